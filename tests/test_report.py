"""The sweep report picks the task's score columns and its headline (higher or lower is better)."""

from __future__ import annotations

from rnnlab.tracking.report import dvc_metrics, report_markdown


def _row(task, cell, **metrics):
    return {"run_id": f"id-{cell}", "run_name": f"{cell}-run", "status": "FINISHED", "task": task, "cell": cell,
            "layers": 2, "direction": "uni" if task == "lm" else "bi", "embedding": "learned", "crf": "True",
            "params_total": 1000, **metrics}


def test_language_model_report_ranks_by_lowest_test_perplexity():
    rows = [_row("lm", "rnn", test_ppl=150.0, best_val_ppl=155.0), _row("lm", "lstm", test_ppl=114.2,
                                                                        best_val_ppl=118.0)]
    text = report_markdown("lm", rows)
    assert "| best val ppl | test ppl |" in text and "| 114.2 |" in text
    assert "Best test perplexity: 114.2000 (lstm-run" in text
    assert dvc_metrics(rows)["best"] == {"test_ppl": 114.2}
    assert dvc_metrics(rows)["learned-rnn-2l-uni"] == {"best_val_ppl": 155.0, "test_ppl": 150.0, "params_total": 1000}


def test_tagging_report_shows_entity_scores_and_ranks_by_highest_f1():
    rows = [_row("ner", "lstm", test_f1=0.88, test_f1_PER=0.93, test_precision=0.87, test_recall=0.89),
            _row("ner", "gru", test_f1=0.86)]
    text = report_markdown("ner", rows)
    assert "| crf | best val F1 | test precision | test recall | test F1 | PER |" in text
    assert "| True | - | 0.8700 | 0.8900 | 0.8800 | 0.930 |" in text
    assert "Best test entity F1: 0.8800 (lstm-run" in text
    assert "learned-lstm-2l-bi-crf" in dvc_metrics(rows)
