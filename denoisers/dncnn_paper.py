"""DnCNN with the paper's own trained models, loaded from the authors' released files.

Zhang et al. released their trained DnCNN models as MatConvNet files (MATLAB v7.3) at
github.com/cszn/DnCNN, folder ``model/``: DnCNN-S, one grayscale model per noise level
(``sigma=15.mat``, ``sigma=25.mat``, ``sigma=50.mat``: 17 convolutions), and DnCNN-B
(``GD_Gray_Blind.mat``: 20 convolutions, trained over sigma 0-55). They come without a
licence, so the suite does not ship them: the user downloads them and passes them with the
``weights`` parameter, or converts them once with ``bench import-weights`` (see
:func:`import_weights`) into the user cache, where the denoiser finds them by default.

What ``weights`` may name (:func:`resolve_weights`):

- one file, ``.mat`` (read with h5py, :mod:`denoisers.matconvnet`) or ``.safetensors``
  (converted by :func:`import_weights`, its model card beside it): that model denoises at
  every noise level;
- a folder: files named ``sigma=N.mat`` / ``sigma=N.safetensors`` are per-level models, used
  when the denoiser is given exactly that sigma (N in 8-bit units; an oracle Gaussian cell);
  one file whose name contains ``blind`` (e.g. ``GD_Gray_Blind.mat``) is the blind model,
  used in blind mode (no sigma) and for any sigma without its own file (other levels, other
  noises). Without a blind model such a call is an error saying so;
- the name of a converted model in the cache (``weights="sigma=25"``);
- nothing (None): the cache folder, when ``bench import-weights`` has filled it, else an
  error saying where to get the files.

Results record the SHA-256 of each model file, never its path (:meth:`DnCNNPaper.params`).

References
----------
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual Learning
of Deep CNN for Image Denoising", IEEE TIP 26(7), 3142-3155, 2017.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import InvalidParameterError, WeightsError
from denoisers.learned import TorchDenoiser

#: Where the authors publish the models.
AUTHORS_URL = "github.com/cszn/DnCNN (folder model/)"
#: File types a model may come in: the authors' MATLAB files, or converted ones.
SUFFIXES = (".mat", ".safetensors")
#: Architecture name written in the model cards of converted files.
ARCHITECTURE = "ResidualConvChain"
#: Role of the model in a one-file ``weights``: it serves every level.
ALL_LEVELS = "all"
#: Role of the blind model in a folder.
BLIND = "blind"
#: How close (8-bit units) a sigma must be to a file's level to pick that file.
LEVEL_TOLERANCE = 1e-3

_LEVEL_NAME = re.compile(r"sigma=(\d+(?:\.\d+)?)", re.IGNORECASE)


def default_weights_dir() -> Path:
    """The user cache folder of converted models.

    ``$XDG_CACHE_HOME/denoise-bench/weights/dncnn_paper``; ``$XDG_CACHE_HOME`` defaults to
    ``~/.cache``. It is never inside the package.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "denoise-bench" / "weights" / "dncnn_paper"


@dataclass(frozen=True)
class WeightsSet:
    """The model files a :class:`DnCNNPaper` may use, and the rule that picks one per call.

    Attributes
    ----------
    files : dict of str to Path
        Role to file: ``"all"`` for a single file; for a folder, the level in 8-bit units
        (``"15"``, ``"25"``, ...) of each ``sigma=N`` file and ``"blind"`` for the blind one.
    origin : Path
        The file or folder the user named (for messages).
    """

    files: dict[str, Path]
    origin: Path

    @property
    def per_level(self) -> bool:
        """Whether the noise level picks the model (a folder with ``sigma=N`` files)."""
        return any(role not in (ALL_LEVELS, BLIND) for role in self.files)

    def pick(self, sigma: float | None) -> str:
        """The role of the model to use for ``sigma`` ([0, 1] units; None in blind mode).

        Raises
        ------
        WeightsError
            When the folder has no model for this call.
        """
        if ALL_LEVELS in self.files:
            return ALL_LEVELS
        if sigma is not None:
            level = 255 * float(sigma)
            for role in self.files:
                if role != BLIND and abs(float(role) - level) <= LEVEL_TOLERANCE:
                    return role
        if BLIND in self.files:
            return BLIND
        levels = ", ".join(f"sigma={role}" for role in self.files)
        need = ("blind mode (no sigma given)" if sigma is None
                else f"sigma {255 * float(sigma):.4g} (8-bit units), which has no file of its own,")
        raise WeightsError(
            f"dncnn_paper: {need} needs the blind model (a file whose name contains 'blind', "
            f"e.g. GD_Gray_Blind.mat from {AUTHORS_URL}) in '{self.origin}', which holds only "
            f"{levels}; the per-level models serve oracle Gaussian noise at their own level")


def resolve_weights(weights: str | os.PathLike | None) -> WeightsSet:
    """Find the model file(s) that ``weights`` names (see the module docstring).

    Raises
    ------
    WeightsError
        For a path that does not exist, a file of another type, a folder without usable
        files, a name missing from the cache, or None with an empty cache (saying where the
        authors publish the files and how to pass them).
    """
    if weights is None:
        folder = default_weights_dir()
        if folder.is_dir() and _folder_files(folder):
            return _folder_set(folder)
        raise WeightsError(
            "dncnn_paper needs the DnCNN authors' trained models, which are not shipped (no "
            f"licence came with them): download sigma=15.mat, sigma=25.mat, sigma=50.mat and "
            f"GD_Gray_Blind.mat from {AUTHORS_URL}, then pass one file or their folder as the "
            "'weights' parameter (e.g. in a sweep file: params = {weights = \"PATH\"}), or "
            f"convert them once with 'bench import-weights FILE.mat ...' into {folder}, where "
            "dncnn_paper looks by default")
    path = Path(weights).expanduser()
    if path.is_dir():
        return _folder_set(path)
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise WeightsError(f"weights file '{path}' is neither a MATLAB .mat file nor a "
                               "converted .safetensors file")
        return WeightsSet({ALL_LEVELS: path}, path)
    text = str(weights)
    if os.sep not in text and "/" not in text and path.suffix.lower() not in SUFFIXES:
        cached = default_weights_dir() / f"{text}.safetensors"
        if cached.is_file():
            return WeightsSet({ALL_LEVELS: cached}, cached)
        raise WeightsError(f"weights '{text}' is neither a file or folder here nor a converted "
                           f"model in the cache ('{cached}' is missing; see bench import-weights)")
    raise WeightsError(f"weights file or folder '{path}' is missing")


def load_model(path: str | Path):
    """Load one model file, ``.mat`` or converted ``.safetensors``, on the CPU, in eval mode.

    Returns
    -------
    denoisers.matconvnet.ResidualConvChain

    Raises
    ------
    WeightsError
        For a missing, damaged or unsupported file, naming it.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        from denoisers.matconvnet import load_simplenn_dncnn

        network = load_simplenn_dncnn(path)
    else:
        network = _load_converted(path)
    if network.body[0].in_channels != 1:
        raise WeightsError(f"weights file '{path}' holds a {network.body[0].in_channels}-channel "
                           "model; dncnn_paper runs the grayscale models (colour images are "
                           "denoised channel by channel)")
    return network


def import_weights(source: str | Path, out: str | Path | None = None,
                   name: str | None = None) -> Path:
    """Convert a released DnCNN ``.mat`` file to the suite's safetensors and model card.

    Parameters
    ----------
    source : str or Path
        The authors' MatConvNet file, e.g. ``sigma=25.mat``.
    out : str or Path, optional
        Destination folder (created); default :func:`default_weights_dir`, where
        :class:`DnCNNPaper` looks when ``weights`` is not given. Never the package folder.
    name : str, optional
        File name without suffix; default the source's (``sigma=25``), which keeps the
        folder rule of :func:`resolve_weights` working.

    Returns
    -------
    Path
        The ``.safetensors`` file; its model card (``.json``) is beside it, recording the
        architecture, the source file's name and SHA-256 and where the authors publish it.

    Raises
    ------
    WeightsError
        When ``source`` cannot be read (see :func:`load_model`).
    InvalidParameterError
        For a destination inside the installed package or an unusable ``name``.
    """
    from importlib import metadata

    from denoisers.model_io import file_sha256, save_weights

    source = Path(source)
    if source.suffix.lower() != ".mat":
        raise InvalidParameterError(f"import-weights reads the authors' MATLAB files (.mat), "
                                    f"got '{source}'")
    name = source.stem if name is None else name
    if not name or Path(name).name != name or name.startswith("."):
        raise InvalidParameterError(
            f"--name must be a plain file name without folders, got '{name}'")
    folder = Path(out).expanduser() if out is not None else default_weights_dir()
    package = Path(__file__).resolve().parent
    if folder.resolve().is_relative_to(package):
        raise InvalidParameterError(
            f"refusing to write converted weights into the package ('{folder}'): the authors' "
            "models came without a licence and must not be shipped; choose another --out")
    network = load_model(source)
    depth = network.receptive_radius  # one pixel per 3x3 convolution
    try:
        version = metadata.version("denoise-bench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    card = {
        "architecture": {"name": ARCHITECTURE, "depth": depth,
                         "width": network.body[0].out_channels, "channels": 1},
        "model": f"DnCNN ({depth} convolutions, batch norm merged), released by the authors "
                 f"as {source.name}",
        "reference": "Zhang et al., Beyond a Gaussian Denoiser, IEEE TIP 2017",
        "source": {"file": source.name, "sha256": file_sha256(source),
                   "format": "MatConvNet simplenn, MATLAB v7.3 (HDF5)",
                   "published_at": AUTHORS_URL},
        "licence": "none came with the authors' files: do not redistribute",
        "input": "noisy image in [0, 1]; output = input - predicted noise",
        "converted_by": f"denoise-bench {version} (bench import-weights)",
    }
    return save_weights(network, folder / f"{name}.safetensors", card)


@dataclass
class DnCNNPaper(TorchDenoiser):
    """DnCNN with the authors' released models (DnCNN-S per level, DnCNN-B blind).

    Parameters
    ----------
    weights : str or None
        A ``.mat`` or converted ``.safetensors`` model, a folder of ``sigma=N`` models and a
        blind one, the name of a converted model in the cache, or None for the cache folder
        (see :mod:`denoisers.dncnn_paper`). Results record the files' SHA-256, not the path.
    tile, precision, batch, self_ensemble
        As for every learned denoiser (:class:`denoisers.learned.TorchDenoiser`).

    Notes
    -----
    Grayscale models: colour images are denoised channel by channel. With a folder, an
    oracle sigma equal to a file's level (to 1e-3 in 8-bit units) picks that file; blind mode
    and every other sigma use the blind model. Both paths, arrays (:meth:`denoise`) and
    tensors on their device (:meth:`denoise_tensor`), pick the model by this rule and then
    run the same :class:`~denoisers.learned.TorchDenoiser` code, so their outputs are equal.
    """

    weights: str | None = None

    name = "dncnn_paper"
    colour = "per_channel"

    def __post_init__(self):
        super().__post_init__()
        self._set = resolve_weights(self.weights)  # errors surface when the sweep is planned
        self._models = {}
        self._sha256 = None

    def _load(self) -> dict:
        self._models = {role: load_model(path) for role, path in self._set.files.items()}
        return {1: next(iter(self._models.values()))}

    def setup(self, device: str) -> None:
        """Load every model file once and move them all to ``device``."""
        import torch

        super().setup(device)
        for network in self._models.values():
            network.eval().to(device, memory_format=torch.channels_last)

    def uses_sigma(self, channels: int) -> bool:
        """True when the weights are a folder whose models are picked by the noise level."""
        return self._set.per_level

    def supports_tensor(self) -> bool:
        """True: :meth:`denoise_tensor` picks the model as :meth:`denoise` does.

        The base class's rule answers False for a class that overrides ``denoise``, since the
        tensor path would bypass it; this class overrides both.
        """
        return True

    def denoise(self, noisy, sigma=None, *, noise=None):
        """Denoise an array with the model that :meth:`WeightsSet.pick` picks for ``sigma``.

        Parameters
        ----------
        noisy : numpy.ndarray
            Float32 image, (H, W) or (H, W, 3); values may leave [0, 1].
        sigma : float or None
            Noise standard deviation in [0, 1] units (oracle mode), or None (blind mode: the
            blind model, with no estimate of sigma).
        noise : NoiseModel or None
            Ignored, as by every network here.

        Returns
        -------
        numpy.ndarray
            The denoised float32 image, ``noisy``'s shape.

        Raises
        ------
        WeightsError
            When the weights hold no model for this call (a folder without a blind model).
        """
        return super().denoise(noisy, self._use_model_for(sigma, "cpu"), noise=noise)

    def denoise_tensor(self, noisy, sigma=None, *, noise=None):
        """Denoise a tensor on its device with the model that :meth:`WeightsSet.pick` picks.

        Parameters
        ----------
        noisy : torch.Tensor
            Float32 tensor, (H, W) or (H, W, 3) with the channels last; values may leave
            [0, 1]. The denoiser is set up on its device if it is not set up yet.
        sigma, noise
            As for :meth:`denoise`.

        Returns
        -------
        torch.Tensor
            The denoised float32 tensor, ``noisy``'s shape, on its device: equal to what
            :meth:`denoise` returns for the same image and sigma.

        Raises
        ------
        WeightsError
            When the weights hold no model for this call (a folder without a blind model).
        """
        return super().denoise_tensor(noisy, self._use_model_for(sigma, noisy.device.type),
                                      noise=noise)

    def _use_model_for(self, sigma: float | None, device: str) -> float:
        """Make the model picked for ``sigma`` the network of the next call, setting up on
        ``device`` first if not set up yet; return the sigma to hand on."""
        role = self._set.pick(sigma)
        if self._device is None:
            self.setup(device)
        self._networks = {1: self._models[role]}
        # The networks ignore sigma: passing one spares the base class a blind estimate.
        return 0.0 if sigma is None else sigma

    def params(self) -> dict:
        """The parameters, with each model file's SHA-256 (by role) in place of the path."""
        from denoisers.model_io import file_sha256

        if self._sha256 is None:
            self._sha256 = {role: file_sha256(path) for role, path in self._set.files.items()}
        params = super().params()
        del params["weights"]
        params["weights_sha256"] = dict(self._sha256)
        return params


# --- helpers --------------------------------------------------------------------------------
def _folder_files(folder: Path) -> dict[str, list[Path]]:
    """Role to the candidate files of that role in ``folder``."""
    roles: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            continue
        match = _LEVEL_NAME.fullmatch(path.stem)
        if match:
            role = f"{float(match.group(1)):g}"
        elif BLIND in path.stem.lower():
            role = BLIND
        else:
            continue
        roles.setdefault(role, []).append(path)
    return roles


def _folder_set(folder: Path) -> WeightsSet:
    roles = _folder_files(folder)
    if not roles:
        raise WeightsError(f"weights folder '{folder}' holds no model: expected sigma=N.mat or "
                           "sigma=N.safetensors files and/or one whose name contains 'blind' "
                           f"(the authors publish them at {AUTHORS_URL})")
    for role, paths in roles.items():
        if len(paths) > 1:
            what = "blind models" if role == BLIND else f"models for sigma {role}"
            raise WeightsError(f"weights folder '{folder}' holds {len(paths)} {what} "
                               f"({', '.join(p.name for p in paths)}); keep one")
    ordered = sorted(roles, key=lambda r: (r == BLIND, 0.0 if r == BLIND else float(r)))
    return WeightsSet({role: roles[role][0] for role in ordered}, folder)


def _load_converted(path: Path):
    from denoisers.matconvnet import ResidualConvChain
    from denoisers.model_io import card_path, load_state, read_card, read_tensors

    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing")
    card = read_card(path)
    architecture = dict(card["architecture"])
    if architecture.pop("name") != ARCHITECTURE:
        raise WeightsError(f"model card '{card_path(path)}' describes a "
                           f"'{card['architecture']['name']}', not a DnCNN converted by "
                           "bench import-weights")
    try:
        network = ResidualConvChain(**architecture)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"model card '{card_path(path)}': cannot build {ARCHITECTURE}"
                           f"({architecture}): {error}") from None
    load_state(network, read_tensors(path), path)
    return network.eval()
