"""A read-only connection to a tracker's database for the peer scripts' checks: SQLite (a path)
or PostgreSQL (a postgres:// URL, through psycopg2), both taking `?` placeholders."""
import sqlite3


def connect(db):
    if db.startswith(("postgres://", "postgresql://")):
        import psycopg2

        pg = psycopg2.connect(db)
        pg.set_session(readonly=True)

        class Con:
            def execute(self, sql, args=()):
                cur = pg.cursor()
                cur.execute(sql.replace("?", "%s"), args)
                return cur

        return Con()
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)
