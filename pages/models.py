"""Models and data: every card (source, licence, hash, size, input, parameters, preprocessing, published
accuracy, status) beside the figures measured on this machine by the benchmarks (``bench/results.json``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pages._cards import get_everything
from pages._shared import ensure_ready, friendly_errors, how_to_get, start_page, workspace
from vision_backend import measured, models
from vision_backend.cards import AssetFile, ModelCard

STATUS_ICONS = {"ready": ":material/check_circle:", "missing — fetched on first use": ":material/cloud_download:",
                "missing": ":material/help:"}


def about(card: ModelCard) -> None:
    """What the card is, as its publisher gives it."""
    model = models.all_models().get(card.name)
    rows = [("Task", card.task), ("Licence", card.licence), ("Input", card.input),
            ("Parameters", f"{card.params:,}" if card.params else ""), ("Preprocessing", card.preprocessing),
            ("Published accuracy", card.accuracy),
            ("Settings", ", ".join(f"{p.label} ({p.default})" for p in model.params) if model else ""),
            ("Note", card.note)]
    st.markdown("\n".join(f"- **{label}:** {value}" for label, value in rows if value))


def hash_text(asset: AssetFile) -> tuple[str, str | None]:
    """``sha256 7aad0c74c5e3…`` and the whole hash for its tooltip (a tree: its manifest)."""
    if asset.is_tree:
        return f"every file checked against `vision_backend/manifests/{asset.name}.sha256`", None
    if not asset.file_hash:
        return "no published hash", None
    kind = "sha256" if len(asset.file_hash) == 64 else "md5"
    return f"{kind} `{asset.file_hash[:12]}…`", f"{kind} {asset.file_hash}"


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.0f} kB"


def source(asset: AssetFile) -> str:
    if asset.url:
        return f"[{asset.url.split('/')[2]}]({asset.url})"
    if asset.build:
        return "built from public downloads: " + (asset.build.__doc__ or "").strip().split("\n\n")[0]
    return "no public download: from the team's shared folder (`seed`)"


def files(card: ModelCard) -> None:
    """Where each file comes from, its hash (all of it in the tooltip) and size."""
    if card.source == "package":
        st.markdown(f"From the Python package `{card.package}` (`pip install -r requirements.txt`): "
                    + ", ".join(f"`{f}`" for f in card.package_files))
        return
    for asset in card.files:
        text, whole = hash_text(asset)
        size = f" · {megabytes(asset.size)}" if asset.size else ""
        st.markdown(f"**{asset.name}**{size} · {text} · {source(asset)}", help=whole)


def figures_table(card: ModelCard, figures: dict[str, measured.Figure]) -> None:
    """The figures the benchmarks measured on this card here, with the ratio beside each time."""
    found = measured.for_card(card.name, figures)
    if not found:
        st.caption("Not measured on this machine (no benchmark figure for it in bench/results.json).")
        return
    st.dataframe(pd.DataFrame([{"figure": f.name, "value": measured.shown(f, ratio=False),
                                "vs raw": f"{f.vs_raw:.2f}x" if f.vs_raw is not None else "", "date": f.date,
                                "bench": f.bench, "machine": f.machine} for f in found]),
                 hide_index=True, width="stretch", column_config={
                     "vs raw": st.column_config.TextColumn(help="This time over the bare library call's in the "
                                                                 "same run: the figure that compares across days")})


def get_it(card: ModelCard) -> None:
    """Missing: the one line that gets it, and a button where it has a public download."""
    if card.ready():
        return
    how_to_get(card)
    size = card.download_size()
    if card.downloadable() and st.button(f"Get it ({megabytes(size)})" if size else "Get it", key=f"get:{card.name}",
                                         icon=":material/download:"):
        if ensure_ready(card):
            st.rerun()


def panel(card: ModelCard, figures: dict[str, measured.Figure], opened: bool) -> None:
    status = card.status()
    with st.expander(f"**{card.title}** · {status}", icon=STATUS_ICONS.get(status), expanded=opened):
        left, right = st.columns(2)
        with left:
            about(card)
        with right:
            files(card)
        st.markdown("**Measured here**")
        figures_table(card, figures)
        get_it(card)


def cards(figures: dict[str, measured.Figure]) -> None:
    """A tab of models and one of data sets; the card named in the address (``?card=yunet``, Home's table) open."""
    chosen = {c.name: c for c in models.cards()}.get(st.query_params.get("card", ""))
    kinds = {"Models": "model", "Data sets": "dataset"}
    default = "Data sets" if chosen and chosen.kind == "dataset" else None
    for tab, kind in zip(st.tabs(list(kinds), default=default), kinds.values()):
        with tab, friendly_errors():
            for card in (c for c in models.cards() if c.kind == kind):
                panel(card, figures, opened=card is chosen)


def own_detectors() -> None:
    """The detectors this workspace trained on its own boxes (Your own objects), each with its card."""
    space = workspace()
    rows = []
    for name in space.detection_projects():
        for saved in space.detection_project(name, create=False).detectors().values():
            rows.append(own_card(name, saved))
    st.subheader("Your detectors")
    if not rows:
        st.caption("None yet: draw boxes and train one on the Your own objects page.")
        return
    st.dataframe(pd.DataFrame(sorted(rows, key=lambda r: r["trained"], reverse=True)), hide_index=True,
                 width="stretch", column_config={"trained": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")})


def own_card(project: str, saved: Any) -> dict[str, Any]:
    """A trained detector's card: what it finds, what it learnt from, how good it measured, what it is built on."""
    meta = saved.meta
    measured = (f"AP50 {meta['ap50']:.2f}, AP {meta['ap']:.2f} on {meta.get('tested_photos')} held-out photos"
                if meta.get("ap50") is not None else "not measured (nothing held out)")
    return {"project": project, "detector": saved.stem, "kind": meta.get("kind"),
            "classes": ", ".join(meta.get("classes", [])), "photos": meta.get("photos"), "boxes": meta.get("boxes"),
            "measured": measured, "base": meta.get("base"), "input": f"{meta.get('input_size')} px",
            "training": f"{meta.get('train_s', 0):.0f} s" + (" (stopped)" if meta.get("stopped") else ""),
            "trained": pd.Timestamp(saved.saved, unit="s")}


start_page(":material/inventory_2: Models and data",
           "Each model and data set: where it comes from, its licence and hash, what its publisher measured, and "
           "what the benchmarks measured on this machine. This VM's speed moves 1.4-4x from day to day: beside a "
           "time, its ratio to the bare library call in the same run is the figure that compares.")
ready = sum(c.ready() for c in models.cards())
st.caption(f"{ready} of {len(models.cards())} ready. Full benchmark report: `bench/REPORT.md`.")
get_everything("models_get_everything")
cards(measured.latest())
with friendly_errors():
    own_detectors()
