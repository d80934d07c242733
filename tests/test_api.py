"""The Python API (``alignrec.api``): a run made in code, its models answering in the dataset's ids,
lists scored exactly as the run scores its models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import alignrec
from alignrec.errors import AlignrecError

TINY = ["threads=1", "models=[mostpop, sasrec]", "eval.ks=[1, 5, 10]",
        "sasrec={hidden: 8, layers: 1, heads: 1, max_len: 10, epochs: 2, eval_every: 1}"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> alignrec.Run:
    """A two-model run on an LC-Rec file: 40 users walking a 12-item cycle."""
    folder = tmp_path_factory.mktemp("api")
    inter = {str(u): [str((u + step) % 12) for step in range(6 + u % 4)] for u in range(40)}
    (folder / "toy").mkdir()
    (folder / "toy" / "Toy.inter.json").write_text(json.dumps(inter))
    return alignrec.run(None, folder / "run", [f"data.path={folder / 'toy'}", "data.format=lcrec", *TINY],
                        progress=False)


def test_a_run_in_code_is_the_cli_run(run: alignrec.Run) -> None:
    assert run.models == ["mostpop", "sasrec"]
    recorded = json.loads((run.folder.model("sasrec").metrics).read_text())["metrics"]
    assert run.metrics("sasrec") == recorded and set(recorded) >= {"recall@10", "ndcg@5"}
    assert alignrec.load_run(run.folder.root).metrics("mostpop") == run.metrics("mostpop")
    with pytest.raises(AlignrecError, match="harmonized has no test metrics in this run .its models: mostpop, sasrec"):
        run.metrics("harmonized")


def test_recommendations_speak_the_dataset_ids_and_leave_the_history_out(run: alignrec.Run) -> None:
    sasrec = run.recommender("sasrec")
    recs = sasrec.recommend(["3", "4", "5"], k=5)
    assert len(recs) == 5 and not {"3", "4", "5"} & {r.item_id for r in recs}
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert recs[0].item_id == "6"  # the cycle's next item; the toy file has no titles: the id is the title
    assert all(r.title == r.item_id for r in recs)
    assert sasrec.recommend(["3", "4", "5"], k=5, exclude_history=False) != recs
    batched = sasrec.recommend_many([["3", "4", "5"], ["7"]], k=5)[0]  # padded beside a shorter history
    assert [r.item_id for r in batched] == [r.item_id for r in recs]
    assert [r.score for r in batched] == pytest.approx([r.score for r in recs], abs=1e-5)
    # more than remain: every other item once, no padding leaks out
    assert sorted(r.item_id for r in sasrec.recommend(["0", "1"], k=50)) == sorted(str(i) for i in range(2, 12))


def test_a_known_user_gets_the_list_of_their_whole_history(run: alignrec.Run) -> None:
    sasrec, dataset = run.recommender("sasrec"), run.dataset
    history = [str(dataset.item_ids[i]) for i in dataset.sequence(dataset.user_index()["7"])]
    assert sasrec.recommend_user("7", k=5) == sasrec.recommend(history, k=5)


def test_bad_ids_name_the_id(run: alignrec.Run) -> None:
    sasrec = run.recommender("sasrec")
    with pytest.raises(AlignrecError, match="unknown item id '99' in Toy .and 1 more."):
        sasrec.recommend(["1", "99", "98"])
    with pytest.raises(AlignrecError, match="a history is a list of item ids, not the string '12'"):
        sasrec.recommend("12")
    with pytest.raises(AlignrecError, match="unknown user id 'nobody'"):
        sasrec.recommend_user("nobody")
    with pytest.raises(AlignrecError, match="k=0: must be at least 1"):
        sasrec.recommend(["1"], k=0)
    with pytest.raises(AlignrecError, match="model 'bert4rec': choose one of mostpop, sasrec"):
        run.recommender("bert4rec")
    with pytest.raises(AlignrecError, match="not a run folder"):
        alignrec.load_run(run.folder.root / "sasrec")


def test_evaluating_the_run_s_own_lists_gives_the_run_s_metrics(run: alignrec.Run) -> None:
    dataset = run.dataset
    rows = [json.loads(line) for line in run.folder.model("sasrec").rankings("test").read_text().splitlines()]
    lists = {row["user"]: row["items"] for row in rows}
    assert run.evaluate(lists) == pytest.approx(run.metrics("sasrec"))
    # a subset, other cut-offs; an unknown item is a miss, not an error
    first = next(iter(lists))
    hit = run.evaluate({first: lists[first]}, ks=[10])
    missed = run.evaluate({first: ["no-such-item"] * 10}, ks=[10])
    target = str(dataset.item_ids[dataset.sequence(dataset.user_index()[first])[-1]])
    assert hit["recall@10"] == float(target in lists[first][:10]) and missed["recall@10"] == 0.0
    with pytest.raises(AlignrecError, match="unknown user id 'nobody'"):
        run.evaluate({"nobody": ["1"]})


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, alignrec; assert 'torch' not in sys.modules; print(sorted(alignrec.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "load_run" in out and "Recommendation" in out
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        alignrec.nothing  # noqa: B018


def test_the_readme_s_python_example_names_only_the_api() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    used = {word.split("(")[0] for word in example.replace("alignrec.", " alignrec.").split() if
            word.startswith("alignrec.")}
    assert used and used <= {f"alignrec.{name}" for name in alignrec.__all__}, used
