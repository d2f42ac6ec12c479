"""The upload of a published folder to the Hugging Face Hub, with `huggingface_hub`: the token
comes from the environment (HF_TOKEN, or the login `huggingface-cli login` keeps) and is written
nowhere; HF_ENDPOINT names another Hub."""

from __future__ import annotations

import logging
from pathlib import Path

from mpsynth import __version__
from mpsynth.core.errors import ConfigError

log = logging.getLogger(__name__)


def upload(
    folder: Path, repo: str, private: bool, fingerprint: str, endpoint: str | None = None
) -> str:
    """Create the dataset repository (or reuse it) and commit the folder to it; the commit's URL."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise ConfigError(
            "publish --repo: HF_HUB_OFFLINE is set, and the upload needs the Hub: unset it for "
            "this command"
        )
    if "/" not in repo:
        raise ConfigError(f"publish --repo {repo!r}: name the repository as ORG/NAME")
    api = HfApi(endpoint=endpoint)
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message=f"mpsynth {__version__}: run {fingerprint[:12]}",
    )
    log.info("publish: uploaded %s to %s (%s)", folder, repo, info)
    return str(info)
