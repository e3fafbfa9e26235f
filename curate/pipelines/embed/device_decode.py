"""Tensor-side image work: batched resize/crop in torch, and JPEG decoding on the device (nvjpeg).

On CUDA, ``torchvision.io.decode_jpeg(..., device="cuda")`` decodes a list of JPEGs in one
call; images are then grouped by size and resized with one ``interpolate`` per group, on a
side CUDA stream so decoding overlaps the model. Anything nvjpeg cannot take (PNG, CMYK,
odd JPEGs, oversize images) goes to the CPU decode workers, which also classify its errors.
The same code runs on CPU (``decode="torchvision"``), which is how it is tested without a GPU.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from curate.pipelines.embed.decode import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    Preprocess,
    read_source,
)

JPEG_MAGIC = b"\xff\xd8\xff"
_TORCH_MODES = {
    "bicubic": "bicubic",
    "bilinear": "bilinear",
    "nearest": "nearest",
    "lanczos": "bicubic",
}


def resize_crop_tensor(x, pre: Preprocess):
    """Resize and centre-crop a float ``(N, 3, H, W)`` batch in [0, 1] as ``pre`` says."""
    import torch.nn.functional as F

    s = pre.image_size
    mode = _TORCH_MODES[pre.interpolation]
    kw = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
    h, w = x.shape[-2:]
    if pre.resize_mode == "squash":
        return F.interpolate(x, size=(s, s), mode=mode, **kw).clamp_(0.0, 1.0)
    r = pre.resize_size
    scale = r / min(h, w)
    nh, nw = max(r, round(h * scale)), max(r, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=mode, **kw).clamp_(0.0, 1.0)
    top, left = (nh - s) // 2, (nw - s) // 2
    return x[..., top : top + s, left : left + s]


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_info(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from a JPEG's frame header, or None if not a JPEG.

    A few microseconds per image (PIL's ``open`` costs ten times more): on the GPU path this
    runs for every image in one thread.
    """
    if not data.startswith(JPEG_MAGIC):
        return None
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return w, h, data[i + 9]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _jpeg_ok(data: bytes, max_pixels: int) -> bool:
    """A gray or YCbCr JPEG within the pixel guard: nvjpeg can take it (CMYK cannot)."""
    info = jpeg_info(data)
    if info is None:
        return False
    w, h, comps = info
    return comps in (1, 3) and 0 < w * h <= max_pixels


class TensorDecoder:
    """Decode JPEGs with ``torchvision.io.decode_jpeg`` on ``device``; others on CPU workers.

    Parameters
    ----------
    pre
        The encoder's preprocessing.
    device
        ``cuda`` (nvjpeg) or ``cpu`` (libjpeg-turbo through torchvision; for tests).
    fallback
        A CPU decoder with ``submit(rows) -> Future[(pixels, errors)]`` for the rest.
    """

    def __init__(
        self,
        pre: Preprocess,
        device: str,
        fallback,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        base_dir: str | None = None,
    ) -> None:
        self.pre, self.device, self.fallback = pre, device, fallback
        self.max_pixels, self.base_dir = max_pixels, base_dir
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-nvjpeg")
        self._stream = None
        if device.startswith("cuda"):
            import torch

            self._stream = torch.cuda.Stream(device=device)

    def submit(self, rows: list) -> Future:
        """Start decoding rows of ``(bytes, path, url)``; the result is ``(float NCHW, errors)``."""
        return self._thread.submit(self._decode, rows)

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)

    def _split(self, rows: list) -> tuple[list[int], list[bytes], list[int]]:
        gpu_idx, gpu_data, cpu_idx = [], [], []
        for i, (data, path, url) in enumerate(rows):
            try:
                raw = read_source(data, path, url, base_dir=self.base_dir)
            except ImageError:
                cpu_idx.append(i)  # the CPU path records the same error with its kind
                continue
            if _jpeg_ok(raw, self.max_pixels):
                gpu_idx.append(i)
                gpu_data.append(raw)
            else:
                cpu_idx.append(i)
        return gpu_idx, gpu_data, cpu_idx

    def _decode(self, rows: list):
        import contextlib

        import torch

        s = self.pre.image_size
        gpu_idx, gpu_data, cpu_idx = self._split(rows)
        cpu_future = self.fallback.submit([rows[i] for i in cpu_idx]) if cpu_idx else None
        errors: list = [None] * len(rows)
        ctx = (
            torch.cuda.stream(self._stream)
            if self._stream is not None
            else contextlib.nullcontext()
        )
        with ctx:
            out = torch.zeros((len(rows), 3, s, s), dtype=torch.float32, device=self.device)
            decoded, failed = self._decode_jpegs(gpu_data)
            self._place_resized(out, [gpu_idx[j] for j in decoded], [decoded[j] for j in decoded])
            retry = [gpu_idx[j] for j in failed]
            if retry:  # nvjpeg refused these: let the CPU path decode them or name the error
                retry_future = self.fallback.submit([rows[i] for i in retry])
                self._merge(out, errors, retry, retry_future)
            if cpu_future is not None:
                self._merge(out, errors, cpu_idx, cpu_future)
            if self._stream is not None:
                self._stream.synchronize()
        return out, errors

    def _decode_jpegs(self, datas: list[bytes]) -> tuple[dict, list[int]]:
        """Decode on the device; returns {index: CHW uint8 tensor} and the indices that failed."""
        import warnings

        import torch

        # torchvision 0.29 deprecates its decoders in favour of TorchCodec; they still work,
        # and nvjpeg batch decoding has no TorchCodec equivalent yet: silence that one warning
        warnings.filterwarnings(
            "ignore", "The image decoding and encoding capabilities", DeprecationWarning
        )
        from torchvision.io import ImageReadMode, decode_jpeg

        if not datas:
            return {}, []
        tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        try:
            imgs = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device)
            return dict(enumerate(imgs)), []
        except Exception:
            pass  # one bad image fails the whole batch: decode one by one
        done, failed = {}, []
        for j, t in enumerate(tensors):
            try:
                done[j] = decode_jpeg(t, mode=ImageReadMode.RGB, device=self.device)
            except Exception:  # nvjpeg refuses it: the CPU path decodes or names the error
                failed.append(j)
        return done, failed

    def _place_resized(self, out, rows: list[int], imgs: list) -> None:
        """Group same-sized images, resize each group in one call, write into ``out``."""
        import torch

        groups: dict[tuple[int, int], list[int]] = {}
        for k, img in enumerate(imgs):
            groups.setdefault(tuple(img.shape[-2:]), []).append(k)
        for members in groups.values():
            batch = torch.stack([imgs[k] for k in members]).float().div_(255.0)
            res = resize_crop_tensor(batch, self.pre)
            out[torch.tensor([rows[k] for k in members], device=out.device)] = res

    def _merge(self, out, errors: list, idx: list[int], future: Future) -> None:
        import torch

        pixels, errs = future.result()
        t = torch.from_numpy(pixels)
        if self.device.startswith("cuda"):
            t = t.pin_memory()  # NHWC, contiguous: pinned, then one async copy
        t = t.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        out[torch.tensor(idx, device=out.device)] = t
        for k, i in enumerate(idx):
            errors[i] = errs[k]
