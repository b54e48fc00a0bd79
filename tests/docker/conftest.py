"""The Docker fixtures (a private dockerd, the project's images built on it)."""

from tests.docker.dockerd import built_images, dockerd

__all__ = ["built_images", "dockerd"]
