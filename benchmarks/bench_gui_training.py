"""Training in the window: idle memory, GUI responsiveness during a run, throughput vs model.fit.

Goals (issue 4): the window's resident memory after start-up ≤ 250 MB; while the Train panel
trains the seed CNN on digits with live plots, a 10 ms timer on the GUI thread is late by at
most 30 ms at the 99th percentile; the panel's worker trains at ≥ 0.97 × the samples per second
of a plain ``model.fit`` on the same freshly built model and data (same process, alternating
order, first epoch excluded from both).
Run: QT_QPA_PLATFORM=offscreen uv run python benchmarks/bench_gui_training.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())

TIMER_MS = 10
BATCH = 32


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def settle(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def wait_until(app, condition, timeout: float) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the benchmark waited too long")
        app.processEvents()
        time.sleep(0.002)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


GUI_CPU: list[float] = []  # GUI-thread CPU seconds per wall second, one per panel run


def panel_run(app, panel, epochs: int) -> tuple[float, list[float]]:
    """One run through the panel (the user's path: live curves, adaptive redraw). Returns the
    samples per second over epochs 2..E and the lateness of a 10 ms GUI timer (ms) while
    batches were flowing."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    panel.form.epochs_spin.setValue(epochs)
    panel.form.batch_spin.setValue(BATCH)
    epoch_times: list[float] = []
    lateness: list[float] = []
    last = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if panel.state == "running" and last[0]:
            lateness.append((now - last[0]) * 1000 - TIMER_MS)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TIMER_MS)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    panel.sigTrainingFinished.connect(loop.quit)
    panel.start()
    panel.session.worker.sigEpoch.connect(lambda _e, _logs: epoch_times.append(time.perf_counter()))
    timer.start()
    wall, cpu = time.perf_counter(), time.thread_time()
    loop.exec()
    GUI_CPU.append((time.thread_time() - cpu) / (time.perf_counter() - wall))
    timer.stop()
    panel.sigTrainingFinished.disconnect(loop.quit)
    samples = len(panel.dataset.train)
    rate = (len(epoch_times) - 1) * samples / (epoch_times[-1] - epoch_times[0])
    return rate, lateness


def plain_fit(design, dataset, epochs: int) -> float:
    """Samples per second of ``model.fit`` on numpy arrays, epochs 2..E (the panel's settings:
    Adam 1e-3, sparse categorical cross-entropy, accuracy)."""
    import keras

    from engine.keras_build import build_keras_model

    keras.utils.set_random_seed(0)
    model = build_keras_model(design)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times: list[float] = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter())

    train, val = dataset.train, dataset.validation
    model.fit(train.x, train.y, batch_size=BATCH, epochs=epochs, validation_data=(val.x, val.y),
              verbose=0, callbacks=[EpochClock()])
    return (len(times) - 1) * len(train) / (times[-1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    args = parser.parse_args()
    epochs, pairs = (3, 1) if args.quick else (6, 3)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from engine.examples import seed_design
    from gui.document import Document
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Document(seed_design()), settings=settings)
    window.show()
    settle(app, 1.0)
    idle = rss_mb()
    window.show_training_panel()
    panel = window.train_panel
    wait_until(app, lambda: panel.dataset is not None, 120)
    settle(app, 0.5)
    shown = rss_mb()
    print(f"idle RSS after start-up        : {idle:8.1f} MB (window shown, events processed; goal ≤ 250 MB)")
    print(f"RSS with the Train panel shown : {shown:8.1f} MB (plots made, digits loaded; before TensorFlow)")

    from gui.workers import running as evaluations_running

    def quiet() -> None:  # a finished run starts an evaluation: let it end before measuring
        wait_until(app, lambda: evaluations_running() == 0, 120)
        settle(app, 0.3)

    t = time.perf_counter()
    panel_run(app, panel, 2)  # imports TensorFlow on the worker thread and warms Keras up
    print(f"first run (TensorFlow import)  : {time.perf_counter() - t:8.1f} s (2 epochs)")
    quiet()
    design, dataset = panel.document.design, panel.dataset
    gui_rates, fit_rates, lateness = [], [], []
    for i in range(pairs):
        for which in (("gui", "fit") if i % 2 == 0 else ("fit", "gui")):
            if which == "gui":
                rate, late = panel_run(app, panel, epochs)
                gui_rates.append(rate)
                lateness += late
            else:
                fit_rates.append(plain_fit(design, dataset, epochs))
            quiet()
    trained = rss_mb()
    print(f"GUI timer lateness in training : p50 {percentile(lateness, 0.5):.1f} ms · p99 "
          f"{percentile(lateness, 0.99):.1f} ms · max {max(lateness):.1f} ms ({TIMER_MS} ms timer, "
          f"{len(lateness)} ticks; goal p99 ≤ 30 ms)")
    gui, fit = statistics.median(gui_rates), statistics.median(fit_rates)
    print(f"samples/s, panel (live plots)  : {gui:8.0f} (median of {pairs}; epochs 2–{epochs}, batch {BATCH})")
    print(f"samples/s, plain model.fit     : {fit:8.0f} (median of {pairs}; same model and data)")
    print(f"ratio                          : {gui / fit:8.3f}  (goal ≥ 0.97)")
    print(f"GUI thread CPU while training  : {statistics.median(GUI_CPU[1:] or GUI_CPU) * 100:8.1f} % of one core "
          f"(drawing curves and progress; the GUI's share of the machine)")
    print(f"RSS after training             : {trained:8.1f} MB")
    window.document.mark_saved()
    window.close()


if __name__ == "__main__":
    main()
