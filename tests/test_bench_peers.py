"""`autodiff-jit bench --peers`: the peer table (each peer's time, autodiff_jit's ratio to it,
every first-call time), checked with made-up measurements and with a fake peer through the
whole command (CI installs no peer library)."""
import json

import autodiff_jit as ad
from autodiff_jit import cli
from autodiff_jit.bench import objectives, peers, report
from autodiff_jit.bench.runner import CaseResult, Measurement, ratios


class _Result:
    def __init__(self, cases):
        self.cases = cases


def _case(name, times, firsts, statuses=None):
    c = CaseResult(name, "n=3", 1.0)
    kinds = {"numpy": "baseline", "compiled": "mode", "tape": "mode"}
    for impl, t in times.items():
        m = Measurement(impl, kinds.get(impl, "peer"), median=t, first_call=firsts.get(impl))
        m.status = (statuses or {}).get(impl, "ok")
        c.measurements[impl] = m
    return c


def _peer_table(result):
    (table,) = [t for t in report.tables(result) if t[0].startswith("Against peers")]
    return table


def test_peer_table_columns_and_ratios():
    a = _case("poly", {"numpy": 4e-6, "compiled": 1e-6, "tape": 5e-5, "jax": 4e-6, "torch": 5e-7},
              {"compiled": 0.02, "jax": 0.05, "torch": 0.001})
    b = _case("rosen", {"numpy": 1e-3, "compiled": 2e-4, "tape": 1e-3, "jax": 1e-4, "torch": 1},
              {"compiled": 0.03, "jax": 0.08}, statuses={"torch": "skipped"})
    title, head, rows = _peer_table(_Result([a, b]))
    assert head == ["case", "size", "compiled", "jax", "compiled/jax", "torch", "compiled/torch",
                    "1st call compiled", "1st call jax", "1st call torch"]
    assert rows[0] == ["poly", "n=3", "1 us", "4 us", "0.25x", "500 ns", "2x",
                       "20 ms", "50 ms", "1 ms"]
    assert rows[1] == ["rosen", "n=3", "200 us", "100 us", "2x", "skipped", "-",
                       "30 ms", "80 ms", "-"]
    assert "below 1 = autodiff_jit is faster" in title
    # autodiff_jit's own tables no longer repeat the peers
    own = [t for t in report.tables(_Result([a, b])) if not t[0].startswith("Against peers")]
    assert all("jax" not in " ".join(h) for _, h, _ in own)
    text = report.format_text(_Result([a, b]))
    assert text.count("compiled/jax") == 1 and "1st call torch" in text
    md = report.to_markdown(_Result([a, b]))
    assert "| case | size | compiled | jax | compiled/jax |" in md
    assert ratios(a)["compiled/jax"] == 0.25 and ratios(a)["jax/compiled"] == 4.0


def test_no_peer_table_without_peers():
    a = _case("poly", {"numpy": 4e-6, "compiled": 1e-6, "tape": 5e-5}, {"compiled": 0.02})
    assert len(report.tables(_Result([a]))) == 2
    # a peer that ran in no case is not a column
    b = _case("poly", {"numpy": 4e-6, "compiled": 1e-6, "jax": None}, {},
              statuses={"jax": "skipped"})
    assert len(report.tables(_Result([b]))) == 2


def test_bench_command_with_a_fake_peer(monkeypatch, tmp_path, capsys):
    # "jax" played by autodiff_jit's interpreter: the command runs it like the real one
    def fake_prepare(library, name, params, args, argnums):
        obj = objectives.OBJECTIVES[name]
        g = ad.grad(obj.make_fn(params), argnums=tuple(argnums), mode="interpret")
        return (lambda: g(*args)), (lambda r: list(r) if isinstance(r, tuple) else [r])

    monkeypatch.setattr(peers, "available", lambda lib: (True, "0.0-fake"))
    monkeypatch.setattr(peers, "prepare", fake_prepare)
    out = tmp_path / "out.json"
    argv = ["bench", "--quick", "--no-progress", "--color", "never", "--cases", "polynomial",
            "--modes", "compiled", "--peers", "jax", "--json", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Against peers" in text and "compiled/jax" in text and "1st call jax" in text
    data = json.loads(out.read_text())
    (case,) = data["cases"]
    assert case["measurements"]["jax"]["status"] == "ok"
    assert case["measurements"]["jax"]["first_call"] > 0
    assert case["ratios"]["compiled/jax"] > 0
