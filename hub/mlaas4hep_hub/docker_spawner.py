"""User servers in Docker containers, chosen in a spawn form (image, memory, CPUs, GPU).

- image from an allowlist only; memory and CPU choices capped by the host;
  a GPU offered only where the host has NVIDIA GPUs, each running user a
  different device;
- a persistent volume per user as the home folder, a shared read-only data
  folder, no extra capabilities, ``no-new-privileges``;
- host networking bound to 127.0.0.1 for single-host and test deployments
  (each server on its own port).

The same checks run for the form and for spawns through the REST API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html import escape
from typing import Any, ClassVar

from docker.types import DeviceRequest
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from tornado import web
from traitlets import Dict, Float, List, Unicode, default

from .spawner import TokenFileMixin

GIB = 1024**3


def parse_memory(text: str) -> int:
    """Bytes of '512M', '2G', '2GB', '1.5G'."""
    value = text.strip().upper().removesuffix("B")
    units = {"K": 1024, "M": 1024**2, "G": GIB, "T": 1024**4}
    if value[-1:] in units:
        return int(float(value[:-1]) * units[value[-1]])
    return int(value)


def host_memory() -> int:
    """Physical memory of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def host_gpus() -> list[str]:
    """Indices of the NVIDIA GPUs of this machine ([] without nvidia-smi or GPUs)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


class DockerHostSpawner(TokenFileMixin, DockerSpawner):
    """DockerSpawner with the MLaaS4HEP spawn form (see the module docstring)."""

    images = Dict(
        {"mlaas4hep/singleuser:dev": "MLaaS4HEP (TensorFlow CPU)"}, config=True,
        help="Images users may choose: {image: description}. Nothing else is accepted.")
    memory_choices = List(
        Unicode(), ["2G", "4G", "8G"], config=True,
        help="Memory limits offered; those above the host's memory are not offered.")
    cpu_choices = List(
        Float(), [1.0, 2.0], config=True,
        help="CPU limits offered; those above the host's cores are not offered.")
    gpu_devices = List(
        Unicode(), config=True,
        help="NVIDIA GPU indices that may be given to users (default: all the host has).")
    data_path = Unicode(
        "", config=True,
        help="Host folder mounted read-only at /data in every container (shared data).")

    _gpus_in_use: ClassVar[dict[str, str]] = {}

    @default("gpu_devices")
    def _gpu_devices_default(self) -> list[str]:
        return host_gpus()

    @default("allowed_images")
    def _allowed_images_default(self) -> dict[str, str]:
        return {image: image for image in self.images}

    @default("ip")
    def _ip_default(self) -> str:
        return "127.0.0.1"

    @default("network_name")
    def _network_default(self) -> str:
        return "host"

    @default("use_internal_ip")
    def _internal_ip_default(self) -> bool:
        return True  # no port bindings with host networking

    @default("remove")
    def _remove_default(self) -> bool:
        return True  # the home volume persists; the container is made anew each start

    @default("volumes")
    def _volumes_default(self) -> dict[str, str]:
        return {"mlaas4hep-home-{username}": "/home/jovyan"}

    @default("notebook_dir")
    def _notebook_dir_default(self) -> str:
        return "/home/jovyan"

    def offered_memory(self) -> list[str]:
        """Memory choices that fit in the host."""
        return [m for m in self.memory_choices if parse_memory(m) <= host_memory()]

    def offered_cpus(self) -> list[float]:
        """CPU choices the host has."""
        return [c for c in self.cpu_choices if c <= (os.cpu_count() or 1)]

    @default("options_form")
    def _options_form_default(self) -> str:
        def select(name: str, label: str, options: list[tuple[str, str]]) -> str:
            items = "".join(f'<option value="{escape(v)}">{escape(t)}</option>'
                            for v, t in options)
            return (f'<div class="form-group"><label for="{name}">{label}</label>'
                    f'<select class="form-control" name="{name}" id="{name}">{items}'
                    f"</select></div>")

        form = select("image", "Select your desired image",
                      [(i, f"{d} ({i})") for i, d in self.images.items()])
        form += select("memory", "Select your desired memory size",
                       [(m, m) for m in self.offered_memory()])
        form += select("cpus", "CPUs", [(f"{c:g}", f"{c:g}") for c in self.offered_cpus()])
        if self.gpu_devices:
            form += select("gpu", "GPU", [("0", "None"), ("1", "1 GPU")])
        else:
            form += '<p>GPU: not available on this hub</p>'
        return form

    @default("options_from_form")
    def _options_from_form_default(self) -> Any:
        def parse(formdata: dict[str, list[str]]) -> dict[str, Any]:
            first = {k: v[0] for k, v in formdata.items() if v}
            return self.validate_options({
                "image": first.get("image", next(iter(self.images))),
                "memory": first.get("memory", self.offered_memory()[0]),
                "cpus": float(first.get("cpus", self.offered_cpus()[0])),
                "gpu": first.get("gpu", "0") == "1"})
        return parse

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Refuse anything the form does not offer (also for REST API spawns)."""
        image = options.get("image", next(iter(self.images)))
        if image not in self.images:
            raise web.HTTPError(400, f"image {image!r} is not offered on this hub")
        memory = str(options.get("memory", self.offered_memory()[0]))
        if memory not in self.offered_memory():
            raise web.HTTPError(400, f"memory {memory!r} is not offered; choose one of "
                                     f"{', '.join(self.offered_memory())}")
        cpus = float(options.get("cpus", self.offered_cpus()[0]))
        if cpus not in self.offered_cpus():
            raise web.HTTPError(400, f"{cpus:g} CPUs are not offered")
        gpu = bool(options.get("gpu", False))
        if gpu and not self.gpu_devices:
            raise web.HTTPError(400, "this hub has no GPU to offer")
        return {"image": image, "memory": memory, "cpus": cpus, "gpu": gpu}

    def _claim_gpu(self) -> str:
        taken = set(self._gpus_in_use.values())
        free = [g for g in self.gpu_devices if g not in taken]
        if not free:
            raise web.HTTPError(409, "all GPUs are in use; start without a GPU or try later")
        self._gpus_in_use[self.user.name] = free[0]
        return free[0]

    def get_env(self) -> dict[str, Any]:
        env = super().get_env()
        return self.token_env(env, "/tmp/bt_u1000")

    def get_args(self) -> list[str]:
        return [*super().get_args(), *self.token_keeper_args()]

    async def start(self) -> Any:
        options = self.validate_options(self.user_options or {})
        self.image = options["image"]
        self.mem_limit = options["memory"]
        self.cpu_limit = options["cpus"]
        self.port = random_port()
        host_config: dict[str, Any] = {"cap_drop": ["ALL"],
                                       "security_opt": ["no-new-privileges"]}
        if options["gpu"]:
            device = self._claim_gpu()
            host_config["device_requests"] = [DeviceRequest(device_ids=[device],
                                                            capabilities=[["gpu"]])]
        self.extra_host_config = host_config
        if self.data_path:
            self.read_only_volumes = {self.data_path: "/data"}
        self.log.info("Starting %s for %s: %s, memory %s, %g CPUs%s", self.image,
                      self.user.name, self.image, self.mem_limit, self.cpu_limit,
                      ", 1 GPU" if options["gpu"] else "")
        try:
            return await super().start()
        except BaseException:
            self._gpus_in_use.pop(self.user.name, None)
            raise

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            self._gpus_in_use.pop(self.user.name, None)

    async def get_ip_and_port(self) -> tuple[str, int]:
        return self.ip, self.port

    async def progress(self) -> Any:
        options = self.user_options or {}
        yield {"progress": 20, "message": f"Creating a container from "
                                          f"{options.get('image', self.image)} with "
                                          f"{options.get('memory', '?')} memory"}
        yield {"progress": 60, "message": "Starting JupyterLab in the container"}
