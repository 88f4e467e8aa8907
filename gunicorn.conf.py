"""gunicorn settings for Egret. Every value can be overridden with the env var named beside it."""

import glob
import multiprocessing
import os
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The serving model (docs/benchmarks.md, "Streamed answers at scale"): gthread workers, one
# per core, each with many threads. A streamed answer holds a thread for as long as the model
# writes (seconds) but almost no CPU and no database connection, so hundreds can be open
# while short requests (/health/) still find a free thread.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", 256))
# Database connections come from a pool in each worker (egret/settings.py): at most
# workers x (DATABASE_POOL_MAX_SIZE + 1 for /health/), whatever the number of open streams.
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "16")
# One BLAS thread per process: numpy embeds the question, and several BLAS threads per worker
# on a busy host spin against each other (a 7 ms embedding took 0.3 s of CPU).
for _blas in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas, "1")
# Long enough for a streamed answer from a slow model; a stuck worker is still recycled.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 200))
# Same rule as egret/settings.py: LOG_FORMAT, else JSON unless DEBUG.
_debug = os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
_log_format = (os.environ.get("LOG_FORMAT", "").strip().lower()
              or ("plain" if _debug else "json"))
# The app writes one `egret.request` line per request (request id, status, latency, who), so
# gunicorn's own access log is off by default with JSON logs; "-" turns it on, "" off.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "" if _log_format == "json" else "-") or None
errorlog = "-"
# Values of secret-looking query parameters (?api_key=, ?token=...) are written as REDACTED.
logger_class = "core.accesslog.RedactingLogger"
# Request id (set by the app on every response) and latency in microseconds.
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(b)s request_id=%({x-request-id}o)s latency_us=%(D)s'
)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "egret.wsgi:application"

if _log_format == "json":
    # gunicorn's own lines (boot, worker exits, timeouts) as JSON too, like the app's.
    _stream = {"class": "logging.StreamHandler", "formatter": "json"}
    logconfig_dict = {
        "formatters": {"json": {"()": "core.logging.JSONFormatter"}},
        "handlers": {"stderr": {**_stream, "stream": "ext://sys.stderr"},
                     "stdout": {**_stream, "stream": "ext://sys.stdout"},
                     "off": {"class": "logging.NullHandler"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout" if accesslog else "off"],
                                "propagate": False},
        },
    }

# Prometheus metrics summed across workers (core/metrics.py): every worker writes its values
# under this directory, emptied when gunicorn starts so counters begin at zero.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _var_dir = Path(os.environ.get("EGRET_VAR_DIR", Path(__file__).resolve().parent / "var"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_var_dir / "prometheus")


def on_starting(server):
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(directory / "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

# gunicorn 25+ opens a control socket for `gunicornc`, by default at one path per user, which
# several instances on a host would share. Off unless a per-instance path is given.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True
