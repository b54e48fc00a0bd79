"""The Docker fixtures (a private dockerd, the project's images built on it) come from
tests/conftest.py, so one daemon and one image build serve the whole session."""
