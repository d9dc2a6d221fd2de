"""CNN basics: kernels, feature maps and pooling on your own photo, and what a real CNN's layers see."""

import numpy as np
import pandas as pd
import streamlit as st

from pages._shared import current_photo, guarded_fragment, keep, ready_model, start_page, tabbed
from vision_backend import convolution as cv
from vision_backend import models
from vision_backend.imageops import resize_square

WORK_SIDE = 256
POOLING = {"max": "max pooling", "avg": "average pooling"}
DEFAULT_BANK = ["Sobel x", "Sobel y", "Laplacian edge", "emboss", "sharpen", "Gaussian blur"]


def kernel_weights(name: str) -> np.ndarray:
    """The grid of weights for kernel ``name``, as the person last edited it (kept across page switches)."""
    weights_key = keep(f"cb_weights_{name}", cv.KERNELS[name].tolist())
    grid = st.data_editor(pd.DataFrame(st.session_state[weights_key]).round(4), key=f"cb_grid_{name}",
                          hide_index=True, width="content")
    st.session_state[weights_key] = grid.to_numpy(np.float32).tolist()
    return grid.to_numpy(np.float32)


@guarded_fragment
def kernel_tab(grey: np.ndarray) -> None:
    c1, c2, c3, c4 = st.columns(4)
    name = c1.selectbox("Kernel", list(cv.KERNELS), key=keep("cb_kernel", "Laplacian edge"))
    stride = c2.slider("Stride", 1, 4, key=keep("cb_stride", 1))
    padding = c3.radio("Padding", ["same", "valid"], horizontal=True, key=keep("cb_padding", "same"),
                       help="'same' pads the border with zeros so the output keeps the size (at stride 1).")
    use_relu = c4.toggle("ReLU", key=keep("cb_relu", False),
                         help="Keep positive responses only, as a conv layer's ReLU does.")
    st.markdown("Edit the weights (the grid is the kernel; try your own):")
    kernel = kernel_weights(name)
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


@guarded_fragment
def layer_tab(grey: np.ndarray) -> None:
    st.markdown("A conv layer holds many kernels and answers with one **feature map** per kernel: a stack as deep "
                "as the number of kernels. Each map lights up where its pattern is.")
    bank = st.multiselect("Kernels in this layer", list(cv.KERNELS), key=keep("cb_bank", DEFAULT_BANK))
    relu_bank = st.toggle("ReLU after the layer", key=keep("cb_bank_relu", True))
    if not bank:
        st.info("Pick at least one kernel for the layer.")
        return
    kernels = cv.kernel_bank(bank)
    maps = cv.conv2d(grey, kernels)
    if relu_bank:
        maps = cv.relu(maps)
    st.caption(f"Input {grey.shape[0]}x{grey.shape[1]}x1 → {len(bank)} kernels of "
               f"{kernels.shape[0]}x{kernels.shape[1]} → output {maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}")
    columns = st.columns(min(4, len(bank)))
    for i, name in enumerate(bank):
        with columns[i % len(columns)]:
            st.image(cv.to_display(maps[:, :, i]), width="stretch")
            st.caption(name)


@guarded_fragment
def pool_tab(photo: np.ndarray) -> None:
    st.markdown("Pooling 2x2 with stride 2 keeps one value of every 2x2 block — the largest (max) or the mean "
                "(average) — so each step halves the image, as CNNs do between their conv blocks.")
    mode = st.radio("Pooling", list(POOLING), horizontal=True, key=keep("cb_pool", "max"), format_func=POOLING.get)
    steps = cv.pooling_steps(resize_square(photo, 224).astype(np.float32), mode, smallest=7)
    st.caption(" → ".join(str(s.shape[0]) for s in steps) + f" ({mode} pooling, 2x2, stride 2)")
    for column, step in zip(st.columns(len(steps)), steps):
        column.image(cv.enlarged(step.clip(0, 255).astype(np.uint8), 224), width="stretch")
        column.caption(f"{step.shape[0]}x{step.shape[1]}")


def loaded_base():
    """The real MobileNetV2 base and its layers worth showing; a status line while it loads (the
    first visit starts TensorFlow: 10-20 s), so the tab never sits as empty slots."""
    base = ready_model(models.default("transfer base").name)
    if base is None:
        return None, []
    with st.status("Loading the real MobileNetV2 (the first time starts TensorFlow, 10–20 s)…") as status:
        layers = cv.conv_layers(base.runtime())
        status.update(label=f"MobileNetV2 loaded: {len(layers)} layers with feature maps", state="complete")
    return base, layers


@st.cache_data(max_entries=16, show_spinner="Running MobileNetV2 on your photo…")
def feature_maps(_base, photo: np.ndarray, layer: str, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``count`` most active maps of ``layer`` on the photo, their channels and the layer's channel count,
    computed once per photo and layer (a page switch or another slider then costs nothing)."""
    with _base.using() as keras_base:
        maps, channels = cv.feature_maps(keras_base, layer, _base.preprocess([photo]), count)
        return maps, channels, keras_base.get_layer(layer).output.shape[-1]


@guarded_fragment
def real_tab(photo: np.ndarray) -> None:
    st.markdown("The real MobileNetV2 (ImageNet weights): early layers answer to edges and colours, late layers to "
                "parts and textures, at lower resolution and in many more channels.")
    base, layers = loaded_base()
    if base is None:
        return
    layer = st.select_slider("Layer (input → output)", layers, key=keep("cb_layer", layers[0]))
    count = st.slider("Feature maps to show", 4, 32, step=4, key=keep("cb_count", 16))
    maps, channels, total = feature_maps(base, photo, layer, count)
    st.caption(f"MobileNetV2 layer `{layer}` ({layers.index(layer) + 1} of {len(layers)}): {total} channels of "
               f"{maps.shape[1]}x{maps.shape[2]}; showing the {len(maps)} most active")
    columns = st.columns(8)
    for i, (feature_map, channel) in enumerate(zip(maps, channels)):
        with columns[i % 8]:
            st.image(cv.enlarged(cv.to_display(feature_map), 112), width="stretch")
            st.caption(f"#{channel}")


start_page("CNN basics", "A convolutional layer slides small kernels over the image and adds up products; ReLU keeps "
           "the positive answers; pooling halves the size. Here on your photo, step by step.")
_, photo = current_photo()
grey = cv.working_grey(photo, WORK_SIDE)
tabbed({"One kernel": lambda: kernel_tab(grey), "A layer = many kernels": lambda: layer_tab(grey),
        "Pooling": lambda: pool_tab(photo), "What a real CNN sees": lambda: real_tab(photo)})
