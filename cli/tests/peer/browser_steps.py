"""Drives the dashboard in headless Chromium over the DevTools protocol, step by step, as a user
would: navigate, type, click, and wait for what the page should then show.

usage: browser_steps.py BROWSER STEPS_JSON
  STEPS_JSON is a list of steps, each one of
    {"go": URL}                      navigate
    {"do": JS}                       evaluate (e.g. set an input's value, click a button)
    {"wait": JS, "why": TEXT}        poll the expression every 20 ms until true (30 s at most)
  Prints "ok" when every step held; a wait that times out exits non-zero naming its `why` and
  the page's text.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))
from cdp import launch  # noqa: E402

browser, steps = sys.argv[1], json.loads(sys.argv[2])
proc, ws = launch(browser)


def evaluate(expr):
    r = ws.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in r:
        raise SystemExit(f"{expr}: {r['exceptionDetails']}")
    return r.get("result", {}).get("value")


try:
    for step in steps:
        if "go" in step:
            ws.call("Page.navigate", url=step["go"])
            time.sleep(0.1)
        elif "do" in step:
            evaluate(step["do"])
        else:
            start = time.time()
            while evaluate(f"Boolean({step['wait']})") is not True:
                if time.time() - start > 30:
                    text = evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                    raise SystemExit(f"timed out: {step.get('why', step['wait'])}\n{text}")
                time.sleep(0.02)
    print("ok")
finally:
    proc.kill()
    proc.wait()
