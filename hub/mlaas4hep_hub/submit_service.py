"""The ``submit`` service (``/services/submit/``): ``workflow.py`` runs as jobs, in the
style of the MLaaS4HEP server::

    POST   submit              {"name", "files", "labels", "model" (model.py text),
                                "params", "preproc", "device", "memory", "cpus"}
    GET    jobs                your jobs
    GET    jobs/ID             state (running, finished, failed), exit code, error
    GET    jobs/ID/log         workflow.py's output so far (text)
    GET    jobs/ID/results     the output folder as a tar.gz (finished jobs)
    DELETE jobs/ID             stop the job and remove it

The inputs are checked with the CLI's own checks (same messages) before the
job starts. Jobs run as containers of the user image with the asked memory
and CPU limits (Docker), or as local processes (dev mode). Their state is
kept on disk, so it survives a restart of the service.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from tornado import web

from mlaas4hep.services.archive import pack_folder
from mlaas4hep.services.body import load_json
from mlaas4hep.services.jobs import DockerRunner, JobStore, Limits, LocalRunner

from .bearer import bearer_options, validator_from
from .inference_service import home_finder
from .service_base import ServiceHandler, service_app, user_errors
from .serving import serve


class JobsHandler(ServiceHandler):
    @property
    def jobs(self) -> JobStore:
        return self.settings["jobs"]


class SubmitHandler(JobsHandler):
    async def post(self) -> None:
        with user_errors():
            record = await asyncio.to_thread(self.jobs.submit, self.user,
                                             load_json(self.request.body))
        self.set_status(201)
        self.finish(record)


class ListHandler(JobsHandler):
    def get(self) -> None:
        self.finish({"jobs": self.jobs.list(self.user)})


class JobHandler(JobsHandler):
    def get(self, job_id: str) -> None:
        with user_errors():
            self.finish(self.jobs.get(self.user, job_id))

    async def delete(self, job_id: str) -> None:
        with user_errors():
            await asyncio.to_thread(self.jobs.delete, self.user, job_id)
        self.finish({"deleted": job_id})


class LogHandler(JobsHandler):
    def get(self, job_id: str) -> None:
        with user_errors():
            text = self.jobs.log(self.user, job_id)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)


class ResultsHandler(JobsHandler):
    async def get(self, job_id: str) -> None:
        with user_errors():
            record = self.jobs.get(self.user, job_id)
            folder = self.jobs.results(self.user, job_id)
        self.set_header("Content-Type", "application/gzip")
        self.set_header("Content-Disposition",
                        f'attachment; filename="{record["name"]}-{job_id}.tar.gz"')
        with tempfile.TemporaryFile() as out:
            await asyncio.to_thread(pack_folder, folder, out, record["name"])
            out.seek(0)
            while chunk := out.read(2**20):
                self.write(chunk)
                await self.flush()
        self.finish()


ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    ("submit", SubmitHandler),
    ("jobs", ListHandler),
    ("jobs/([^/]+)", JobHandler),
    ("jobs/([^/]+)/log", LogHandler),
    ("jobs/([^/]+)/results", ResultsHandler),
]


def main(argv: list[str] | None = None) -> None:
    """Run the service (started by the hub, which sets the JUPYTERHUB_* variables)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    bearer_options(parser)
    parser.add_argument("--jobs-dir", required=True, help="where jobs are kept")
    parser.add_argument("--runner", choices=["local", "docker"], default="local")
    parser.add_argument("--image", default="", help="the user image (docker runner)")
    parser.add_argument("--home-volume", default="", help="each user's home volume "
                        "({username} is replaced; docker runner)")
    parser.add_argument("--home-template", default="", help="users' home folders: the "
                        "working folder of local jobs ({username} is replaced)")
    parser.add_argument("--max-memory", default="4G")
    parser.add_argument("--max-cpus", type=float, default=2.0)
    parser.add_argument("--gpu", action="store_true", help="jobs may ask for a GPU")
    args = parser.parse_args(argv)
    runner = (DockerRunner(args.image, home_volume=args.home_volume)
              if args.runner == "docker" else LocalRunner())
    jobs = JobStore(args.jobs_dir, runner, workdir=home_finder(args.home_template),
                    limits=Limits(args.max_memory, args.max_cpus, args.gpu))
    app = service_app("/services/submit/", ROUTES, validator=validator_from(args), jobs=jobs)
    serve(lambda: app, args.port)


if __name__ == "__main__":
    main()
