"""CNN basics: kernels, feature maps and pooling on your own photo, and what a real CNN's layers see."""

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from pages._shared import current_photo, friendly_errors, load_model
from vision_backend import classification as cl
from vision_backend import convolution as cv
from vision_backend.face_detection import fit_long_side

st.title("CNN basics")
st.caption("A convolutional layer slides small kernels over the image and adds up products; ReLU keeps the positive "
           "answers; pooling halves the size. Here on your photo, step by step.")

name, photo = current_photo()
WORK_SIDE = 256
grey = fit_long_side(photo, WORK_SIDE)[0].mean(axis=2).astype(np.float32) / 255.0


def nearest(image: np.ndarray, side: int) -> np.ndarray:
    """Enlarge a small map without blurring its pixels."""
    factor = max(1, side // max(image.shape[:2]))
    return cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)


kernel_tab, layer_tab, pool_tab, real_tab = st.tabs(
    ["One kernel", "A layer = many kernels", "Pooling", "What a real CNN sees"])

with kernel_tab, friendly_errors():
    c1, c2, c3, c4 = st.columns(4)
    kernel_name = c1.selectbox("Kernel", list(cv.KERNELS), index=1, key="cb_kernel")
    stride = c2.slider("Stride", 1, 4, 1, key="cb_stride")
    padding = c3.radio("Padding", ["same", "valid"], horizontal=True, key="cb_padding",
                       help="'same' pads the border with zeros so the output keeps the size (at stride 1).")
    use_relu = c4.toggle("ReLU", False, key="cb_relu", help="Keep positive responses only, as a conv layer's ReLU does.")
    st.markdown("Edit the weights (the grid is the kernel; try your own):")
    grid = st.data_editor(pd.DataFrame(cv.KERNELS[kernel_name]).round(4), key=f"cb_grid_{kernel_name}",
                          hide_index=True, width="content")
    kernel = grid.to_numpy(np.float32)
    output = cv.conv2d(grey, kernel, stride, padding)[:, :, 0]
    if use_relu:
        output = cv.relu(output)
    left, right = st.columns(2)
    left.image((grey * 255).astype(np.uint8), width="stretch")
    left.caption(f"Input (greyscale) {grey.shape[0]}x{grey.shape[1]}")
    right.image(cv.to_display(output), width="stretch")
    right.caption(f"Output {output.shape[0]}x{output.shape[1]} from input {grey.shape[0]}x{grey.shape[1]} "
                  f"(kernel {kernel.shape[0]}x{kernel.shape[1]}, stride {stride}, padding '{padding}'"
                  f"{', ReLU' if use_relu else ''}) · values {output.min():.2f} to {output.max():.2f}")

with layer_tab, friendly_errors():
    st.markdown("A conv layer holds many kernels and answers with one **feature map** per kernel: a stack as deep "
                "as the number of kernels. Each map lights up where its pattern is.")
    bank = st.multiselect("Kernels in this layer", list(cv.KERNELS), key="cb_bank",
                          default=["Sobel x", "Sobel y", "Laplacian edge", "emboss", "sharpen", "Gaussian blur"])
    relu_bank = st.toggle("ReLU after the layer", True, key="cb_bank_relu")
    if bank:
        size = max(cv.KERNELS[k].shape[0] for k in bank)
        stacked = np.zeros((size, size, 1, len(bank)), np.float32)
        for i, k in enumerate(bank):  # smaller kernels sit centred in the larger square
            pad = (size - cv.KERNELS[k].shape[0]) // 2
            stacked[pad : size - pad, pad : size - pad, 0, i] = cv.KERNELS[k]
        maps = cv.conv2d(grey, stacked)
        if relu_bank:
            maps = cv.relu(maps)
        st.caption(f"Input {grey.shape[0]}x{grey.shape[1]}x1 → {len(bank)} kernels of {size}x{size} → output "
                   f"{maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}")
        columns = st.columns(min(4, len(bank)))
        for i, k in enumerate(bank):
            with columns[i % len(columns)]:
                st.image(cv.to_display(maps[:, :, i]), width="stretch")
                st.caption(k)

with pool_tab, friendly_errors():
    st.markdown("Pooling 2x2 with stride 2 keeps one value of every 2x2 block — the largest (max) or the mean "
                "(average) — so each step halves the image, as CNNs do between their conv blocks.")
    mode = st.radio("Pooling", ["max", "avg"], horizontal=True, key="cb_pool",
                    format_func={"max": "max pooling", "avg": "average pooling"}.get)
    square = cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    steps = cv.pooling_steps(square, mode, smallest=7)
    st.caption(" → ".join(str(s.shape[0]) for s in steps) + f" ({mode} pooling, 2x2, stride 2)")
    columns = st.columns(len(steps))
    for column, step in zip(columns, steps):
        column.image(nearest(step.clip(0, 255).astype(np.uint8), 224), width="stretch")
        column.caption(f"{step.shape[0]}x{step.shape[1]}")

with real_tab, friendly_errors():
    st.markdown("The real MobileNetV2 (ImageNet weights): early layers answer to edges and colours, late layers to "
                "parts and textures, at lower resolution and in many more channels.")
    base = load_model("mobilenet_v2_notop")
    layers = cv.conv_layers(base)
    layer = st.select_slider("Layer (input → output)", layers, value=layers[0], key="cb_layer")
    count = st.slider("Feature maps to show", 4, 32, 16, 4, key="cb_count")
    batch = cl.keras_preprocess("MobileNetV2")(cl.resize(photo, 224)[None])
    maps, channels = cv.feature_maps(base, layer, batch, count)
    total = base.get_layer(layer).output.shape[-1]
    st.caption(f"MobileNetV2 layer `{layer}` ({layers.index(layer) + 1} of {len(layers)}): {total} channels of "
               f"{maps.shape[1]}x{maps.shape[2]}; showing the {len(maps)} most active")
    columns = st.columns(8)
    for i, (m, c) in enumerate(zip(maps, channels)):
        with columns[i % 8]:
            st.image(nearest(cv.to_display(m), 112), width="stretch")
            st.caption(f"#{c}")
