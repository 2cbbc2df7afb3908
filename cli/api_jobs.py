"""Ingest jobs of the HTTP API: `POST /v1/documents` keeps the uploads and ingests them in a background
thread (one at a time: the ingest lock); `GET /v1/jobs/{id}` reports progress and the CLI's summary."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam

from cli.api_app import Admin, ApiError
from rag.errors import GQAError

log = logging.getLogger(__name__)
router = APIRouter()


class Jobs:
    """This process's ingest jobs, kept in memory until the server stops; at most one runs at a time."""

    def __init__(self, settings, embedder) -> None:
        self.settings, self.embedder = settings, embedder
        self._jobs: dict[str, dict] = {}
        self._guard = threading.Lock()  # held while deciding whether a job may start

    def start(self, uploads: list[tuple[str, bytes]], family: str | None, version: str | None, by: str) -> dict:
        """Keep the uploads under <home>/uploads and start ingesting them; 409 while an ingest runs."""
        from ingest.uploads import save_upload, upload_name

        if not uploads:
            raise ApiError(400, "files: upload at least one PDF (multipart field 'files')")
        for name, _ in uploads:
            upload_name(name)  # a name that cannot be kept is refused before anything is written (400)
        with self._guard:
            if any(j["status"] == "running" for j in self._jobs.values()):
                raise ApiError(409, "an ingest job is running; wait for it (GET /v1/jobs/{id}) and upload again")
            self._probe_lock()
            paths = [save_upload(self.settings.home, name, data) for name, data in uploads]
            job: dict = {"id": uuid.uuid4().hex, "status": "running", "submitted_by": by,
                   "files": [p.name for p in paths], "progress": {}, "started_at": _now(),
                   "finished_at": None, "summary": None, "error": None}
            self._jobs[job["id"]] = job
        threading.Thread(target=self._run, args=(job, paths, family, version), name=f"ingest-{job['id'][:8]}",
                         daemon=True).start()
        return {"id": job["id"], "status": "running", "files": job["files"], "url": f"/v1/jobs/{job['id']}"}

    def get(self, job_id: str) -> dict:
        """A copy of one job's record; 404 for an id this process never started."""
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no ingest job {job_id!r} in this server (jobs are kept until it restarts)")
        return {**job, "progress": dict(job["progress"])}

    def wait(self, job_id: str, timeout: float = 60.0) -> dict:
        """The job once it has finished (for tests and scripts that submit and wait)."""
        end = time.monotonic() + timeout
        while self.get(job_id)["status"] == "running" and time.monotonic() < end:
            time.sleep(0.05)
        return self.get(job_id)

    def _probe_lock(self) -> None:
        """409 when another process (the app, the CLI) is ingesting into this home.

        Safe only under the guard with no job of ours running: closing the probe's descriptor drops
        this process's record lock (ingest.pipeline.ingest_lock).
        """
        from ingest.pipeline import store_lock

        try:
            with store_lock(self.settings):
                pass
        except GQAError as exc:
            raise ApiError(409, str(exc)) from None

    def _run(self, job: dict, paths: list[str | Path], family: str | None, version: str | None) -> None:
        from ingest.pipeline import ingest

        def progress(stage: str, done: int, total: int) -> None:
            job["progress"][stage] = {"done": done, "total": total}

        try:
            report = ingest(paths, self.settings, self.embedder, family=family, version=version,
                            on_progress=progress)
            for e in report.failed:  # keep no copies of files that were not ingested (as the app does)
                Path(e["file"]).unlink(missing_ok=True)
            job["summary"] = {**report.to_json(), "exit_code": 2 if report.failed else 0}
            job["status"] = "done"
        except GQAError as exc:
            job["error"], job["status"] = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - a bug: the job says so; the server log has the type
            log.error("ingest job %s failed: %s", job["id"], type(exc).__name__)
            log.debug("traceback", exc_info=exc)
            job["error"], job["status"] = f"internal error ({type(exc).__name__}); see the server log", "failed"
        finally:
            job["finished_at"] = _now()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@router.get("/v1/jobs/{job_id}", summary="An ingest job's progress and, once done, the `ingest --json` summary")
def job_status(job_id: Annotated[str, PathParam(max_length=64)], who: Admin, request: Request) -> dict:
    return request.app.state.jobs.get(job_id)
