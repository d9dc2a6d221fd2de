"""The Your own objects page's labelling: classes, photos in (uploads, a ZIP, the camera, the current photo), and boxes
drawn on a photo with the canvas (drag a rectangle, pick its class, move, resize or delete it), photo after photo.

Not a page itself (the underscore): imported by ``pages/own_objects.py``. The canvas sends every box on it after
each change; :func:`keep_drawn` stores what it holds (``own_detection.canvas.from_canvas``), so the boxes are kept
as they are drawn. Changes made beside the canvas (the list of boxes, a class renamed) start it again from what is
stored.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import streamlit as st

from pages._shared import UPLOAD_TYPES, keep, kept_choice, literal
from vision_backend import drawing, intake
from vision_backend.own_detection import canvas
from vision_backend.own_detection.projects import DetectionProject, Report, StoredPhoto

SHOWN = 50
"""Lines of skipped files and notes shown; past this, how many more."""


# ---- messages for the next run ------------------------------------------------------------------------
def flash(text: str) -> None:
    st.session_state.setdefault("own_flash", []).append(text)


def then_rerun(switch_to: str | None = None, clear: tuple[str, ...] = ()) -> None:
    """Rerun the page; before its widgets are drawn, switch to a project and empty name boxes."""
    if switch_to is not None:
        st.session_state.own_switch_to = switch_to
    st.session_state.own_clear = [*st.session_state.get("own_clear", []), *clear]
    st.rerun()


def apply_pending() -> None:
    if "own_switch_to" in st.session_state:
        st.session_state.own_project = st.session_state.pop("own_switch_to")
    for key in st.session_state.pop("own_clear", []):
        st.session_state[key] = ""


def keep_report(title: str, report: Report) -> None:
    """A report to show at the top of the tabs on the next run (what was added, skipped and why, noted)."""
    st.session_state.own_report = (title, report)


def show_report() -> None:
    """The last report, at the top where it cannot be missed: a line for every file or box refused, and why."""
    for text in st.session_state.pop("own_flash", []):
        st.toast(text)
    found = st.session_state.pop("own_report", None)
    if found is None:
        return
    title, report = found
    st.success(f"{literal(title)}: {literal(report.summary())}", icon=":material/check:")
    for lines, kind in ((report.skipped, st.warning), (report.notes, st.info)):
        if lines:
            more = f"\n- … and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
            kind(("**Not added:**\n" if kind is st.warning else "**Notes:**\n")
                 + "\n".join(f"- {literal(line)}" for line in lines[:SHOWN]) + more,
                 icon=":material/warning:" if kind is st.warning else ":material/info:")


# ---- classes ------------------------------------------------------------------------------------------
def colours(classes: list[str]) -> dict[str, str]:
    """Each class's colour on the canvas, as the drawings give it (its place in the class list)."""
    return {name: canvas.hex_colour(drawing.colour(i)) for i, name in enumerate(classes)}


def classes_row(project: DetectionProject) -> None:
    counts = project.counts()
    a1, a2 = st.columns([3, 1], vertical_alignment="bottom")
    new = a1.text_input("New class", key="own_new_class", placeholder="e.g. mug")
    if a2.button("Add class", key="own_add_class", disabled=not new.strip()):
        flash(f"Added the class {literal(project.add_class(new))}")
        then_rerun(clear=("own_new_class",))
    if counts:
        st.caption("Classes: " + ", ".join(f"**{literal(n)}** ({c} box{'es' if c != 1 else ''})"
                                           for n, c in counts.items()))
        with st.expander("Rename or delete a class"):
            class_changes(project, list(counts))


def class_changes(project: DetectionProject, classes: list[str]) -> None:
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Class", classes, key="own_class_to_change")
    renamed = c2.text_input("Rename to", key="own_rename_to", placeholder=chosen)
    if c3.button("Rename", key="own_rename", disabled=not renamed.strip()):
        project.rename_class(chosen, renamed)
        restart_canvas()
        then_rerun(clear=("own_rename_to",))
    if c4.button("Delete", key="own_delete_class", help="The class and every box of it (the photos stay)."):
        project.delete_class(chosen)
        restart_canvas()
        then_rerun()


# ---- photos in --------------------------------------------------------------------------------------------
def add_photos(project: DetectionProject, photo_name: str, photo: np.ndarray, empty: bool) -> None:
    """Uploads (photos, or a ZIP: with boxes in VOC, COCO or YOLO, or photos alone), the current photo, the camera."""
    with st.expander("Add photos", expanded=empty, icon=":material/add_photo_alternate:"):
        version = st.session_state.get("own_upload_version", 0)  # a new uploader once its files are in
        uploads = st.file_uploader("Photos, or a ZIP of photos (with their boxes in Pascal VOC, COCO or YOLO if "
                                   "you have them)", type=[*UPLOAD_TYPES, "zip"], accept_multiple_files=True,
                                   key=f"own_uploads_{version}")
        if uploads and st.button(f"Add {len(uploads)} file(s)", key="own_add_uploads", type="primary"):
            report = add_uploads(project, uploads)
            st.session_state.own_upload_version = version + 1
            keep_report("Added", report)
            then_rerun()
        if st.button(f"Add the current photo ({literal(photo_name)})", key="own_add_current"):
            report = Report()
            project.add_photo(intake.encode_png(photo), f"{photo_name.rsplit('.', 1)[0]}.png", report=report)
            keep_report("The current photo", report)
            then_rerun()
        camera_shot(project)


def add_uploads(project: DetectionProject, uploads: list) -> Report:
    """Photos one by one; a ZIP as a set (its boxes with it); one report for them all."""
    report = Report()
    for upload in uploads:
        if upload.name.lower().endswith(".zip"):
            part = project.import_set(upload.getvalue())
            report.photos, report.boxes = report.photos + part.photos, report.boxes + part.boxes
            report.skipped += [f"{upload.name}: {line}" for line in part.skipped]
            report.notes += [f"{upload.name}: {line}" for line in part.notes]
        else:
            project.add_photo(upload.getvalue(), upload.name, report=report)
    return report


def camera_shot(project: DetectionProject) -> None:
    if not st.toggle("Take photos with the camera", key=keep("own_camera_on", False)):
        return
    shot = st.camera_input("Camera", key="own_camera", label_visibility="collapsed")
    if shot is None or st.session_state.get("own_camera_done") == shot.file_id:
        return  # each shot is added once, not again on every rerun
    st.session_state.own_camera_done = shot.file_id
    report = Report()
    project.add_photo(shot.getvalue(), "camera.jpg", report=report)
    keep_report("The camera's photo", report)
    then_rerun()


# ---- one photo after another ------------------------------------------------------------------------------
def step(key: str, ids: list[int], by: int) -> None:
    """Move the photo picker ``by`` photos (a button's callback: it runs before the picker is drawn again)."""
    at = ids.index(st.session_state[key]) if st.session_state.get(key) in ids else 0
    st.session_state[key] = ids[(at + by) % len(ids)]


def navigator(project: DetectionProject, photos: list[StoredPhoto]) -> StoredPhoto:
    """Previous and next (keys P and N), and a picker to jump to any photo; the photo picked."""
    ids = [p.id for p in photos]
    by_id = {p.id: p for p in photos}
    key = kept_choice(f"own_photo:{project.name}", ids)
    n1, n2, n3 = st.columns([1, 4, 1], vertical_alignment="bottom")
    n1.button("Previous", key="own_previous", icon=":material/arrow_back:", shortcut="P", on_click=step,
              args=(key, ids, -1), width="stretch")
    chosen = n2.selectbox("Photo", ids, key=key, format_func=lambda i: (
        f"{ids.index(i) + 1} of {len(ids)} · {by_id[i].name} · {by_id[i].boxes} box"
        f"{'es' if by_id[i].boxes != 1 else ''}"))
    n3.button("Next", key="own_next", icon=":material/arrow_forward:", shortcut="N", on_click=step,
              args=(key, ids, 1), width="stretch")
    return by_id[chosen]


@st.cache_data(max_entries=24, show_spinner=False)
def photo_pixels(digest: str, _project: DetectionProject, photo_id: int) -> np.ndarray:
    """A stored photo's pixels, decoded once (its digest names its bytes, whichever project holds it)."""
    return _project.image(photo_id)


@st.cache_data(max_entries=24, show_spinner=False)
def canvas_background(digest: str, _image: np.ndarray, size: tuple[int, int]) -> bytes:
    """The photo at the canvas's size, as JPEG (what travels to the browser on every redraw)."""
    return intake.encode_jpeg(cv2.resize(_image, size, interpolation=cv2.INTER_AREA), 90)


def restart_canvas() -> None:
    """The canvases start again from what is stored (after a change made beside them)."""
    st.session_state.own_canvas_version = st.session_state.get("own_canvas_version", 0) + 1


def canvas_key(project: DetectionProject, photo: StoredPhoto) -> str:
    return f"own_canvas:{project.name}:{photo.id}:{st.session_state.get('own_canvas_version', 0)}"


def drawing_canvas() -> Any:
    """``st_canvas``, or None where the component cannot be loaded."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # noqa: BLE001 - the component registers only where Streamlit can serve it
        return None
    return st_canvas


def label_photo(project: DetectionProject, photo: StoredPhoto, classes: list[str]) -> None:
    """The photo on the canvas with its boxes; new boxes get the class picked above it."""
    label = st.segmented_control("Class of the boxes you draw", classes, key=kept_choice("own_draw_class", classes),
                                 help="Drag a rectangle on the photo. The pen icon of the canvas's toolbar moves, "
                                      "resizes and relabels a box; select one and press Delete to remove it.")
    label = label or classes[0]
    image = photo_pixels(photo.digest, project, photo.id)
    st_canvas = drawing_canvas()
    if st_canvas is None:
        boxes, labels = project.boxes(photo.id)
        st.image(drawing.draw_labelled(image, boxes, labels, classes), width="stretch")
        return
    keep_drawn(project, photo, image, label, classes, st_canvas)


def keep_drawn(project: DetectionProject, photo: StoredPhoto, image: np.ndarray, label: str, classes: list[str],
               st_canvas: Any) -> None:
    """Show the canvas and store the boxes it holds whenever they differ from the stored ones."""
    scale, size = canvas.canvas_scale(photo.width, photo.height), canvas.canvas_size(photo.width, photo.height)
    stored = project.boxes(photo.id)
    palette = colours(classes)
    result = st_canvas(fill_color="rgba(37, 99, 235, 0.08)", stroke_width=3, stroke_color=palette.get(label, "#2563eb"),
                       background_image=canvas_background(photo.digest, image, size), width=size[0], height=size[1],
                       drawing_mode="labeled_rect", label=label, initial_drawing=canvas.to_canvas(*stored, scale, palette),
                       key=canvas_key(project, photo), font_size=14)
    drawn = canvas.from_canvas(result.json_data, scale)
    if canvas.same_boxes(drawn, stored):
        return
    report = project.set_boxes(photo.id, *drawn)
    if report.skipped or report.notes:  # what was kept is not what is drawn: start the canvas from it
        keep_report(f"Boxes on {photo.name}", report)
        restart_canvas()
    st.rerun()


def box_list(project: DetectionProject, photo: StoredPhoto, classes: list[str]) -> None:
    """The photo's boxes one a row: its class (change it) and corners, and a button that deletes it; and the photo's
    own delete."""
    boxes, labels = project.boxes(photo.id)
    with st.expander(f"Boxes on this photo ({len(boxes)})", icon=":material/list:"):
        for index, (box, label) in enumerate(zip(boxes, labels)):
            b1, b2, b3 = st.columns([2, 3, 1], vertical_alignment="center")
            options = list(dict.fromkeys([*classes, label]))
            picked = b1.selectbox(f"Box {index + 1}", options, index=options.index(label),
                                  key=f"own_box_class:{photo.id}:{index}:{label}")
            b2.caption("x1, y1, x2, y2 = " + ", ".join(f"{v:.0f}" for v in box))
            if picked != label or b3.button("Delete", key=f"own_box_delete:{photo.id}:{index}"):
                kept = [i for i in range(len(boxes)) if i != index or picked != label]
                names = [picked if i == index else labels[i] for i in kept]
                project.set_boxes(photo.id, boxes[kept], names)
                restart_canvas()
                st.rerun()
        if st.button("Delete this photo", key=f"own_photo_delete:{photo.id}", icon=":material/delete:"):
            project.delete_photo(photo.id)
            flash(f"Deleted {literal(photo.name)}")
            st.rerun()
