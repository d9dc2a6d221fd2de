"""Image intake: every odd but valid photo becomes RGB uint8; every bad file one clear error."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from vision_backend.intake import ImageIntakeError, read_image, read_photo


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.dstack([x, y, 255 - x]))


JPEG = encode(gradient(), "JPEG")
PNG = encode(gradient(), "PNG")


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


def _bomb() -> bytes:
    # 12,000 x 12,000 one-bit pixels: a few kB of PNG, 144 megapixels decoded.
    return encode(Image.new("1", (12_000, 12_000)), "PNG")


def _corrupt_png_data() -> bytes:
    data = bytearray(PNG)
    start = data.index(b"IDAT") + 8
    for i in range(start, min(start + 200, len(data) - 12)):
        data[i] ^= 0x5A
    return bytes(data)


def _truncated(fmt: str, fraction: float) -> bytes:
    data = encode(gradient(256, 256), fmt)
    return data[: int(len(data) * fraction)]


BAD_FILES = {
    "empty.jpg": b"",
    "one_byte.png": b"\x89",
    "notes.txt": b"just some text, not a picture\n",
    "text_named.jpg": b"this is text with a .jpg name",
    "random.png": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "page.html": b"<!doctype html><html><body><img src=x></body></html>",
    "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "document.pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "archive.zip": _zip_bytes(),
    "data.json": b'{"image": [1, 2, 3]}',
    "truncated_half.jpg": JPEG[: len(JPEG) // 2],
    "jpeg_header_only.jpg": JPEG[:100],
    "jpeg_soi_then_zeros.jpg": b"\xff\xd8\xff\xe0" + bytes(2000),
    "truncated.png": PNG[: len(PNG) // 2],
    "png_signature_only.png": PNG[:8],
    "corrupt_idat.png": _corrupt_png_data(),
    "truncated.gif": _truncated("GIF", 0.4),
    "bogus_header.bmp": b"BM" + bytes(60) + b"\xff" * 100,
    "truncated.tif": _truncated("TIFF", 0.3),
    "truncated.webp": _truncated("WEBP", 0.5),
    "bomb.png": _bomb(),
    "elf_binary.jpg": b"\x7fELF\x02\x01\x01" + bytes(200),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gives_one_clear_error(name: str) -> None:
    with pytest.raises(ImageIntakeError) as info:
        read_image(BAD_FILES[name], name)
    message = str(info.value)
    assert name in message, "the message names the file"
    assert "Traceback" not in message and len(message) < 300


def test_there_are_at_least_twenty_bad_files() -> None:
    assert len(BAD_FILES) >= 20


def test_byte_limit() -> None:
    with pytest.raises(ImageIntakeError, match="limit is"):
        read_image(PNG, "big.png", max_bytes=len(PNG) - 1)
    assert read_image(PNG, "ok.png", max_bytes=len(PNG)).shape == (48, 64, 3)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageIntakeError, match="megapixels"):
        read_image(PNG, "wide.png", max_pixels=64 * 48 - 1)


def check_rgb(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape == (*shape, 3)
    assert array.flags["C_CONTIGUOUS"]


def test_jpeg_and_png_decode_to_rgb() -> None:
    png = read_image(PNG, "g.png")
    check_rgb(png, (48, 64))
    assert np.array_equal(png, np.asarray(gradient()))
    check_rgb(read_image(JPEG, "g.jpg"), (48, 64))


def test_name_does_not_decide_the_format() -> None:
    check_rgb(read_image(PNG, "actually_png.jpg"), (48, 64))


def test_greyscale_becomes_three_equal_channels() -> None:
    grey = Image.fromarray(np.arange(0, 240, dtype=np.uint8).reshape(12, 20))
    array = read_image(encode(grey, "PNG"), "grey.png", min_side=1)
    check_rgb(array, (12, 20))
    assert np.array_equal(array[..., 0], array[..., 2])
    assert array[0, 5, 1] == 5


def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255  # top half opaque red, bottom half fully transparent
    array = read_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), "alpha.png", min_side=1)
    assert tuple(array[0, 0]) == (255, 0, 0)
    assert tuple(array[9, 9]) == (255, 255, 255)


def test_grey_with_alpha_is_composited_on_white() -> None:
    la = Image.fromarray(np.dstack([np.zeros((6, 6), np.uint8), np.full((6, 6), 0, np.uint8)]), "LA")
    array = read_image(encode(la, "PNG"), "la.png", min_side=1)
    assert tuple(array[3, 3]) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    image.putpixel((0, 0), 1)
    data = encode(image, "PNG", transparency=0)
    array = read_image(data, "palette.png", min_side=1)
    assert tuple(array[0, 0]) == (0, 255, 0)
    assert tuple(array[5, 5]) == (255, 255, 255)  # transparent index -> white


def test_palette_without_transparency() -> None:
    image = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    check_rgb(read_image(encode(image, "GIF"), "pal.gif"), (48, 64))


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    array = read_image(encode(cmyk, "JPEG"), "cmyk.jpg", min_side=1)
    check_rgb(array, (8, 16))
    red, green, blue = array[4, 8].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    array = read_image(encode(Image.fromarray(values), "PNG"), "deep.png", min_side=1)
    check_rgb(array, (2, 2))
    assert array[0, 0, 0] == 0 and array[0, 1, 0] == 255 and 126 <= array[1, 0, 0] <= 129


def test_float_tiff_is_stretched() -> None:
    values = np.array([[-1.0, 0.0], [0.5, 1.0]], dtype=np.float32)
    array = read_image(encode(Image.fromarray(values, "F"), "TIFF"), "float.tif", min_side=1)
    assert array[0, 0, 0] == 0 and array[1, 1, 0] == 255


def test_one_bit_image() -> None:
    image = Image.new("1", (9, 7), 1)
    array = read_image(encode(image, "PNG"), "bw.png", min_side=1)
    check_rgb(array, (7, 9))
    assert array.min() == 255


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    array = read_image(buffer.getvalue(), "anim.gif", min_side=1)
    assert tuple(array[5, 5]) == (255, 0, 0)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    array = read_image(encode(image, "JPEG", exif=exif), "phone.jpg", min_side=1)
    check_rgb(array, (40, 20))  # portrait now
    assert array[:10].mean() > 200 and array[-10:].mean() < 50  # left strip is now on top


def test_webp_and_bmp_and_tiff() -> None:
    for fmt in ("WEBP", "BMP", "TIFF"):
        check_rgb(read_image(encode(gradient(), fmt), f"x.{fmt.lower()}"), (48, 64))


@pytest.mark.parametrize("size", [(1, 1), (31, 400), (400, 20)])
def test_photos_too_small_to_show_anything_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ImageIntakeError, match="at least 32 pixels a side") as info:
        read_image(encode(Image.new("RGB", size, (9, 9, 9)), "PNG"), "dot.png")
    assert "dot.png" in str(info.value) and f"{size[0]}x{size[1]}" in str(info.value)
    assert read_image(encode(Image.new("RGB", (32, 32)), "PNG"), "ok.png").shape == (32, 32, 3)


def test_animations_and_multi_page_files_say_which_frame_is_used() -> None:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for fmt, what in (("GIF", "frame"), ("TIFF", "page"), ("WEBP", "frame")):
        buffer = io.BytesIO()
        frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:])
        photo = read_photo(buffer.getvalue(), f"three.{fmt.lower()}")
        assert photo.note == f"“three.{fmt.lower()}” has 3 {what}s; Vision Lab uses {what} 1 of 3.", fmt
        assert photo.image[20, 20, 0] > 200 and photo.image[20, 20, 1] < 60
    assert read_photo(PNG, "one.png").note == ""


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_messages_never_name_an_internal_exception(name: str) -> None:
    with pytest.raises(ImageIntakeError) as info:
        read_image(BAD_FILES[name], name)
    for word in ("OSError", "SyntaxError", "ValueError", "EOFError", "IndexError", "TypeError", "Error:"):
        assert word not in str(info.value), str(info.value)
