"""The seed lab's app, as such labs write it: Flask, served by waitress, appending the
Moscow time to visits.txt on every visit. Same format and same append as the component."""

import os
from datetime import datetime, timedelta, timezone

from flask import Flask, Response

MOSCOW = timezone(timedelta(hours=3))
LOG = os.path.join(os.environ.get("DATA_DIR", "/data"), "visits.txt")
app = Flask(__name__)


@app.get("/")
def visit():
    now = datetime.now(MOSCOW)
    # isoformat(" ", "microseconds") keeps .000000, as the component does.
    line = now.isoformat(" ", "microseconds")
    with open(LOG, "a") as log:
        log.write(line + "\n")
    return Response(f"<p>Moscow time: {line}</p>", mimetype="text/html")


@app.get("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    from waitress import serve

    host, port = os.environ.get("LISTEN_ADDR", "127.0.0.1:8080").rsplit(":", 1)
    print(f"seed-app: serving on http://{host}:{port}", flush=True)
    serve(app, host=host, port=int(port), threads=4, _quiet=True)
