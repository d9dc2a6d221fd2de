"""Write ``bench/REPORT.md`` from ``bench/results.json``: per bench, each figure's latest full run.

A figure's value, unit, date and machine, and beside each time its ``_vs_raw`` ratio (the product over
the bare library call in the same run). Quick runs (``--quick``: a check that a script runs) are left out.

python bench/report.py [--results bench/results.json] [--out bench/REPORT.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_backend import measured  # noqa: E402

HEADER = """# Benchmark report

Made by `python bench/report.py` from `bench/results.json`: each figure's latest full run (`--quick` runs left
out), per bench. What each figure measures is in its script's docstring (`bench/<bench>.py`).

This shared VM's speed moves by 1.4-4x from day to day, so a time here is one day's time. Beside each time is
its `_vs_raw` ratio where the bench measures one: the product's time over the bare library call's at the same
settings, alternated in the same run. Ratios are the figures to compare across days and machines.
"""


TARGETS: tuple[tuple[str, str, float, int], ...] = (
    # figure, ">=" or "<=", target, issue
    ("cold_concurrent_sessions_completed", ">=", 8, 16), ("warm_concurrent_sessions_completed", ">=", 8, 16),
    ("rss_growth_mb_after_5_rounds", "<=", 100, 16), ("kill9_trials", ">=", 10, 16), ("kill9_lost_items", "<=", 0, 16),
    ("kill9_orphans", "<=", 0, 16), ("kill9_duplicates", "<=", 0, 16), ("two_process_write_errors", "<=", 0, 16),
    ("zip_bomb_peak_rss_rise_mb", "<=", 200, 16), ("files_written_outside_home", "<=", 0, 16),
    ("unseeded_pages_with_error_box", "<=", 0, 17), ("quick_tests_s", "<=", 180, 17),
    ("server_log_lines_first_visit_all_pages", "<=", 30, 17), ("onnx_classifier_load_rss_mb", "<=", 250, 17),
    ("page_switch_warm_s", "<=", 1.0, 18), ("first_visit_after_start_s", "<=", 5, 18),
    ("face_detection_slider_rerun_s", "<=", 0.5, 18), ("flowers_demo_page_train_s", "<=", 3, 18),
    ("flowers_demo_accuracy", ">=", 0.872, 18), ("bad_inputs_tried", ">=", 40, 18),
    ("bad_inputs_with_crash_box", "<=", 0, 18),
    ("live_yunet_fps", ">=", 25, 19), ("live_dlib_hog_fps", ">=", 10, 19), ("live_mtcnn_fps", ">=", 8, 19),
    ("live_nanodet_m_fps", ">=", 15, 19), ("live_yolov8n_seg_fps", ">=", 8, 19),
    ("live_recognition_5_faces_fps", ">=", 4, 19), ("live_transfer_head_fps", ">=", 20, 19),
    ("live_browser_yunet_fps", ">=", 20, 19),
    ("batch_classify_photos_per_s", ">=", 200, 20), ("batch_faces_photos_per_s", ">=", 100, 20),
    ("batch_objects_photos_per_s", ">=", 70, 20), ("batch_ray_vs_local_ratio", ">=", 0.7, 20),
    ("batch_classify_vs_raw", "<=", 1.1, 20),
    ("save_model_kill9_trials", ">=", 10, 24), ("save_model_kill9_mixed", "<=", 0, 24),
    ("save_model_kill9_leftover_tmp", "<=", 0, 24),
    ("od_settle_after_upload_s", "<=", 2, 25), ("enrol_two_people_mixups", "<=", 0, 25),
    ("saliency_every_classifier", ">=", 1, 25), ("saliency_deletion_auc_vs_random", "<=", 0.999, 25),
    ("strangers_named_in_group_photos", "<=", 0, 25), ("stray_text_on_pages", "<=", 0, 25),
    ("car_clip_line_count_error", "<=", 0, 27), ("car_clip_id_switches", "<=", 1, 27), ("video_file_fps", ">=", 25, 27),
    ("tracker_ms_per_frame", "<=", 2, 27), ("live_tracking_fps", ">=", 20, 27), ("live_browser_tracking_fps", ">=", 15, 27),
    ("video_10min_rss_growth_mb", "<=", 50, 27),
    ("api_faces_yunet_vs_batch_ratio", "<=", 1.3, 29), ("api_requests_per_s_classify", ">=", 150, 29),
    ("api_page_rerun_p95_under_api_load_s", "<=", 1.5, 29), ("api_fuzz_cases", ">=", 2000, 29),
    ("api_fuzz_5xx", "<=", 0, 29), ("api_cross_workspace_leaks", "<=", 0, 29),
    ("postgres_vs_sqlite_enrol_ratio", "<=", 2, 28), ("s3_vs_folder_import_ratio", "<=", 2, 28),
    ("postgres_kill9_trials", ">=", 10, 28), ("postgres_kill9_lost", "<=", 0, 28), ("postgres_kill9_orphans", "<=", 0, 28),
    ("s3_kill9_trials", ">=", 10, 28), ("s3_kill9_lost", "<=", 0, 28), ("s3_kill9_orphans", "<=", 0, 28),
    ("failover_cycles", ">=", 20, 28), ("failover_lost_items", "<=", 0, 28), ("failover_visitor_back_s", "<=", 10, 28),
    ("cross_replica_visible_s", "<=", 2, 28), ("reload_keeps_visit_workspace", ">=", 1, 28),
    ("revoked_cookie_accepted", "<=", 0, 28), ("reload_keeps_photo_and_settings", ">=", 1, 28),
    ("blip_45s_keeps_photo_and_settings", ">=", 1, 28), ("visitors_30_slider_rerun_p95_s", "<=", 1.5, 28),
    ("visitors_30_errors", "<=", 0, 28), ("mtcnn_answers_per_s_10_visitors", ">=", 3, 28),
    ("server_cores_used_10_visitors", ">=", 1.6, 28),
    ("raccoon_rcnn_ap50", ">=", 0.70, 26), ("raccoon_fast_ap50", ">=", 0.70, 26), ("raccoon_fast_train_s", "<=", 120, 26),
    ("raccoon_rcnn_train_s", "<=", 300, 26), ("own_fast_live_fps", ">=", 15, 26), ("own_rcnn_photo_s", "<=", 2, 26),
    ("own_fast_onnx_vs_keras_max_box_diff_px", "<=", 1, 26), ("voc_coco_yolo_roundtrip_boxes_lost", "<=", 0, 26),
    ("features_b16_vs_floor", "<=", 1.3, 26), ("features_16_photos_vs_keras", "<=", 0.4, 26),
)
"""The issues' targets, checked against each figure's latest full run."""


def targets(figures: dict[str, measured.Figure]) -> list[str]:
    """The issues' targets as a table: the latest value beside each, met or not (or not measured yet)."""
    lines = ["## Targets from the issues", "", "| issue | figure | target | latest | met |", "|--:|---|---|--:|---|"]
    for name, op, goal, issue in TARGETS:
        figure = figures.get(name)
        met = "not measured" if figure is None else (
            "yes" if (figure.value >= goal if op == ">=" else figure.value <= goal) else "**no**")
        value = "" if figure is None else f"{_cell(figure)} ({figure.date})"
        lines.append(f"| #{issue} | `{name}` | {op} {goal:g} | {value} | {met} |")
    return lines + [""]


def _cell(figure: measured.Figure) -> str:
    return f"{figure.value:.4g}" if abs(figure.value) < 10 else f"{figure.value:,.2f}"


def table(figures: list[measured.Figure]) -> list[str]:
    """One bench's figures as a Markdown table (the ratios themselves are shown beside their times)."""
    beside = {measured.ratio_name(f.name) for f in figures if f.vs_raw is not None}
    lines = ["| figure | value | unit | vs raw | date | machine |", "|---|--:|---|--:|---|---|"]
    for f in figures:
        if f.name in beside:
            continue
        ratio = f"{f.vs_raw:.2f}x" if f.vs_raw is not None else ""
        lines.append(f"| `{f.name}` | {_cell(f)} | {f.unit} | {ratio} | {f.date} | {f.machine} |")
    return lines


def report(figures: dict[str, measured.Figure]) -> str:
    times = [f for f in figures.values() if f.is_time and measured.ratio_name(f.name)]
    with_ratio = sum(f.vs_raw is not None for f in times)
    lines = [HEADER, f"Times with their ratio beside them: {with_ratio} of {len(times)} (a cold load or a "
                     "whole-pipeline time has no bare call to compare with; runs before the harness had no ratios).\n"]
    lines += targets(figures)
    for bench, rows in measured.by_bench(figures.values()).items():
        lines += [f"## {bench}", "", f"`python bench/{bench}.py`", "", *table(rows), ""]
    if not figures:
        lines.append("No full runs recorded yet.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/report.py", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=measured.RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "REPORT.md")
    args = parser.parse_args(argv)
    figures = measured.latest(args.results)
    args.out.write_text(report(figures))
    print(f"{args.out}: {len(figures)} figures from {len(measured.by_bench(figures.values()))} benches")


if __name__ == "__main__":
    main()
