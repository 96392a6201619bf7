//! The C ABI of `csrc/shim.cpp`, and the spawner's two system calls: the only `unsafe` of the
//! distributed path. Each wrapper checks what the C++ side cannot (non-null handle, tensor
//! pointers alive for the call) and turns its error string into a Rust one.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn fp_string_free(s: *mut c_char);
    fn fp_group_new(
        backend: c_int,
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        is_server: c_int,
        listen_fd: c_int,
        timeout_ms: i64,
        prefix: *const c_char,
        device_index: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn fp_group_free(g: *mut c_void);
    fn fp_allreduce(
        g: *mut c_void,
        ts: *const *mut C_tensor,
        n: usize,
        op: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    fn fp_broadcast(
        g: *mut c_void,
        ts: *const *mut C_tensor,
        n: usize,
        root: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    fn fp_allgather(
        g: *mut c_void,
        input: *mut C_tensor,
        outputs: *const *mut C_tensor,
        err: *mut *mut c_char,
    ) -> c_int;
    fn fp_barrier(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn fp_store_add(g: *mut c_void, key: *const c_char, delta: i64, err: *mut *mut c_char) -> i64;
    fn fp_set_grad(t: *mut C_tensor, g: *mut C_tensor, err: *mut *mut c_char) -> c_int;
    fn fp_sync_batch_norm(
        g: *mut c_void,
        x: *mut C_tensor,
        weight: *mut C_tensor,
        bias: *mut C_tensor,
        running_mean: *mut C_tensor,
        running_var: *mut C_tensor,
        momentum: f64,
        eps: f64,
        err: *mut *mut c_char,
    ) -> *mut C_tensor;
}

/// Takes the shim's error message (if any) and frees it.
fn take_error(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown error (no message)".to_owned();
    }
    // SAFETY: the shim wrote a NUL-terminated string from malloc into `err`; we copy it out and
    // free it exactly once with the shim's own free.
    unsafe {
        let message = CStr::from_ptr(err).to_string_lossy().into_owned();
        fp_string_free(err);
        message
    }
}

fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// Tensor handles for a call. tch's `as_ptr` hands out the `at::Tensor*` it owns; the shim
/// copies the `at::Tensor` (a reference-counted handle to the same storage), so in-place results
/// land in the caller's tensors and nothing outlives the call.
fn handles(ts: &[&Tensor]) -> Vec<*mut C_tensor> {
    ts.iter().map(|t| t.as_ptr().cast_mut()).collect()
}

/// An owned process group (store + backend) living on the C++ side.
#[derive(Debug)]
pub(crate) struct Handle(*mut c_void);

// SAFETY: a c10d backend may be handed to another thread, and calls into it from several are
// serialised by the backend itself (ProcessGroupGloo enqueues work under its own mutex; the store
// client locks its socket). The trainer issues collectives from its one training thread anyway.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from fp_group_new, is non-null, and is freed only here.
        unsafe { fp_group_free(self.0) }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn group_new(
    backend: i32,
    host: &str,
    port: u16,
    rank: usize,
    world: usize,
    is_server: bool,
    listen_fd: Option<i32>,
    timeout_ms: i64,
    prefix: &str,
    device_index: i32,
) -> Result<Handle, String> {
    let host = c_string(host)?;
    let prefix = c_string(prefix)?;
    let mut err = std::ptr::null_mut();
    // SAFETY: the strings outlive the call; `err` is a valid out-pointer.
    let g = unsafe {
        fp_group_new(
            backend,
            host.as_ptr(),
            c_int::from(port),
            rank as c_int,
            world as c_int,
            c_int::from(is_server),
            listen_fd.unwrap_or(-1),
            timeout_ms,
            prefix.as_ptr(),
            device_index,
            &mut err,
        )
    };
    if g.is_null() {
        Err(take_error(err))
    } else {
        Ok(Handle(g))
    }
}

fn status(rc: c_int, err: *mut c_char) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(take_error(err))
    }
}

pub(crate) fn all_reduce(g: &Handle, ts: &[&Tensor], average: bool) -> Result<(), String> {
    let hs = handles(ts);
    let mut err = std::ptr::null_mut();
    // SAFETY: `hs` points at tensors borrowed for the whole call; the handle is live.
    let rc = unsafe { fp_allreduce(g.0, hs.as_ptr(), hs.len(), c_int::from(average), &mut err) };
    status(rc, err)
}

pub(crate) fn broadcast(g: &Handle, ts: &[&Tensor], root: usize) -> Result<(), String> {
    let hs = handles(ts);
    let mut err = std::ptr::null_mut();
    // SAFETY: as in all_reduce.
    let rc = unsafe { fp_broadcast(g.0, hs.as_ptr(), hs.len(), root as c_int, &mut err) };
    status(rc, err)
}

/// `outputs.len()` must be the world size (checked by the caller).
pub(crate) fn all_gather(g: &Handle, input: &Tensor, outputs: &[&Tensor]) -> Result<(), String> {
    let hs = handles(outputs);
    let mut err = std::ptr::null_mut();
    // SAFETY: `input` and every output are borrowed for the call; the shim reads exactly
    // world-size output handles, which the caller guarantees.
    let rc = unsafe { fp_allgather(g.0, input.as_ptr().cast_mut(), hs.as_ptr(), &mut err) };
    status(rc, err)
}

pub(crate) fn barrier(g: &Handle) -> Result<(), String> {
    let mut err = std::ptr::null_mut();
    // SAFETY: the handle is live.
    let rc = unsafe { fp_barrier(g.0, &mut err) };
    status(rc, err)
}

pub(crate) fn store_add(g: &Handle, key: &str, delta: i64) -> Result<i64, String> {
    let key = c_string(key)?;
    let mut err = std::ptr::null_mut();
    // SAFETY: `key` outlives the call.
    let v = unsafe { fp_store_add(g.0, key.as_ptr(), delta, &mut err) };
    if v < 0 && !err.is_null() {
        Err(take_error(err))
    } else {
        Ok(v)
    }
}

/// Gives `t` the gradient `g` (None clears it).
pub(crate) fn set_grad(t: &Tensor, g: Option<&Tensor>) -> Result<(), String> {
    let mut err = std::ptr::null_mut();
    let g = g.map_or(std::ptr::null_mut(), |g| g.as_ptr().cast_mut());
    // SAFETY: both tensors are borrowed for the call; the shim copies the gradient's handle.
    let rc = unsafe { fp_set_grad(t.as_ptr().cast_mut(), g, &mut err) };
    status(rc, err)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn sync_batch_norm(
    g: &Handle,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    momentum: f64,
    eps: f64,
) -> Result<Tensor, String> {
    let mut err = std::ptr::null_mut();
    // SAFETY: every tensor is borrowed for the call; the shim returns a new heap `at::Tensor*`
    // (or null with an error), whose ownership `Tensor::from_ptr` takes (tch frees it on drop).
    unsafe {
        let y = fp_sync_batch_norm(
            g.0,
            x.as_ptr().cast_mut(),
            weight.as_ptr().cast_mut(),
            bias.as_ptr().cast_mut(),
            running_mean.as_ptr().cast_mut(),
            running_var.as_ptr().cast_mut(),
            momentum,
            eps,
            &mut err,
        );
        if y.is_null() {
            Err(take_error(err))
        } else {
            Ok(Tensor::from_ptr(y))
        }
    }
}

/// A duplicate of `fd` that a spawned child inherits (std opens every descriptor close-on-exec;
/// `dup` clears the flag on the copy). The caller drops it once the child is spawned.
pub(crate) fn inheritable(
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: `fd` is open for the call (borrowed); `dup` only creates a new descriptor.
    let copy = unsafe { libc::dup(fd.as_raw_fd()) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) })
}

/// Sends `signal` to process `pid` (a rank this process spawned and has not yet reaped, so the
/// pid cannot have been reused).
pub(crate) fn send_signal(pid: u32, signal: i32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: plain system call on integers.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
