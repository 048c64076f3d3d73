"""A pretrained-looking .keras file for import, fine-tuning and export tests."""


def save_pretrained(path, bias_shift: float = 5.0):
    """Save the seed CNN to ``path`` (.keras) with its last layer's bias shifted by
    ``bias_shift``, so that its weights are unmistakably not fresh ones; returns the bias saved."""
    from engine.examples import seed_design
    from engine.export.run import ExportOptions, export_model
    from engine.keras_build import build_keras_model

    model = build_keras_model(seed_design())
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, bias + bias_shift])
    export_model(seed_design(), path, ExportOptions("keras"), model=model)
    return bias + bias_shift
