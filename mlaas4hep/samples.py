"""Synthetic ROOT files shaped like the paper's ttH(bb) benchmark.

The MLaaS4HEP performance tests used CMS boosted, all-hadronic ttH(bb) trees
with 3 identifier, 22 flat and 52 jagged branches (77 in all). This module
writes a TTree with that layout from a simple generator, so that large
labelled data sets can be made offline. Signal and background differ only in
the ways listed in :data:`SIGNAL_DIFFERENCES`; the fat-jet and lepton groups
and the pile-up/MET/trigger branches are identically distributed (noise).

Everything is generated with vectorised numpy per chunk of events; the same
``seed`` and ``chunk_size`` always give the same file contents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

IDENTIFIER_BRANCHES: tuple[str, ...] = ("runNo", "evtNo", "lumi")

FLAT_BRANCHES: tuple[str, ...] = (
    "nJets",
    "nFatJets",
    "nPartons",
    "nLeptons",
    "nBJets",
    "nVtx",
    "triggerBit",
    "HT",
    "MHT",
    "MET",
    "METphi",
    "METsig",
    "rho",
    "genEvtWeight",
    "leadJetPt",
    "leadJetEta",
    "dPhiJJ",
    "leadFatJetPt",
    "leadFatJetMass",
    "sphericity",
    "aplanarity",
    "centrality",
)

JAGGED_GROUPS: dict[str, tuple[str, ...]] = {
    "nJets": (
        "jetPt",
        "jetEta",
        "jetPhi",
        "jetMass",
        "jetE",
        "jetBtag",
        "jetCvsL",
        "jetQGL",
        "jetChf",
        "jetNhf",
        "jetPhf",
        "jetMuf",
        "jetElf",
    ),
    "nFatJets": (
        "fatJetPt",
        "fatJetEta",
        "fatJetPhi",
        "fatJetMass",
        "fatJetMassSoftDrop",
        "fatJetTau1",
        "fatJetTau2",
        "fatJetTau3",
        "fatJetBtagSub0",
        "fatJetBtagSub1",
        "fatJetPtSub0",
        "fatJetPtSub1",
        "fatJetDoubleB",
    ),
    "nPartons": (
        "partonPt",
        "partonEta",
        "partonPhi",
        "partonE",
        "partonMass",
        "partonPx",
        "partonPy",
        "partonPz",
        "partonRapidity",
        "partonTheta",
        "partonMatchDR",
        "partonMatchPtRatio",
        "partonMatchBtag",
    ),
    "nLeptons": (
        "leptonPt",
        "leptonEta",
        "leptonPhi",
        "leptonE",
        "leptonCharge",
        "leptonIsMuon",
        "leptonIso",
        "leptonMiniIso",
        "leptonDxy",
        "leptonDz",
        "leptonSip3d",
        "leptonIdMva",
        "leptonJetDR",
    ),
}

_INT_BRANCHES = frozenset(
    {"nJets", "nFatJets", "nPartons", "nLeptons", "nBJets", "nVtx", "triggerBit"}
)
_MAX_JETS = 16
_MAX_FAT_JETS = 6
_BTAG_WP = 0.8  # jetBtag above this counts in nBJets
_RUN_NUMBER = 1
_EVENTS_PER_LUMI = 1000


@dataclass(frozen=True)
class _Physics:
    """The only knobs in which signal and background differ."""

    jet_mean: float  # Poisson mean of nJets (clipped to 0..16)
    jet_pt_slope: float  # GeV; jetPt = 30 GeV + Exp(slope)
    b_fraction: float  # probability that a jet is a b jet
    parton_slope: float  # GeV; event hardness = 100 GeV + Exp(slope)


_PHYSICS: dict[str, _Physics] = {
    "signal": _Physics(
        jet_mean=5.0, jet_pt_slope=65.0, b_fraction=0.55, parton_slope=220.0
    ),
    "background": _Physics(
        jet_mean=3.5, jet_pt_slope=50.0, b_fraction=0.30, parton_slope=150.0
    ),
}


def _describe_differences() -> str:
    """Render :data:`SIGNAL_DIFFERENCES` from the numbers actually used."""
    sig, bkg = _PHYSICS["signal"], _PHYSICS["background"]
    return (
        "signal vs background: "
        f"nJets ~ Poisson({sig.jet_mean:g}) vs Poisson({bkg.jet_mean:g}) "
        f"(at most {_MAX_JETS}); "
        f"jetPt = 30 GeV + Exp({sig.jet_pt_slope:g} vs {bkg.jet_pt_slope:g} GeV); "
        f"{sig.b_fraction:.0%} vs {bkg.b_fraction:.0%} of jets are b jets "
        "(jetBtag ~ Beta(6, 1.2), light jets Beta(1, 6)); "
        "an event hardness 100 GeV + "
        f"Exp({sig.parton_slope:g} vs {bkg.parton_slope:g} GeV) "
        "scales partonPt and partonE. So signal has more jets and b-tagged jets, "
        "larger HT, MHT, leadJetPt, partonPt and partonE (and smaller METsig); "
        "the jet-derived event shapes differ too. The fat-jet and lepton groups "
        "and nPartons, nVtx, rho, MET, METphi, triggerBit and genEvtWeight are "
        "identically distributed."
    )


# Measured on 100k events of each kind (seed 0 / 1), the seed's preproc.json
# cuts keep (signal, background): any(log(partonE) < 6.31) 80%, 90%;
# all(log(partonE) > 5.85) 43%, 30%; all(partonPt > 200) 58%, 46%;
# 1 <= nJets**2 <= 16 44%, 69%; 0 <= nLeptons <= 2 98.5%, 98.5%;
# all of them together 9.2%, 12.4%. A (64, 32) MLP on all branches (zero
# padded) reaches a test AUC of about 0.81.
SIGNAL_DIFFERENCES: str = _describe_differences()


def make_sample(
    path: str | os.PathLike[str],
    n_events: int,
    kind: str,
    *,
    seed: int = 0,
    tree: str = "events",
    chunk_size: int = 100_000,
) -> Path:
    """Write ``n_events`` events of ``kind`` ("signal"/"background") to ``path``.

    The file is written under ``<path>.partial`` in chunks of ``chunk_size``
    events (zlib level 1) and renamed to ``path`` only once complete.
    """
    if kind not in _PHYSICS:
        raise ValueError(f"kind must be 'signal' or 'background', not {kind!r}")
    if n_events < 0:
        raise ValueError(f"n_events must be >= 0, not {n_events}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    rng = np.random.default_rng(seed)
    try:
        with uproot.recreate(partial, compression=uproot.ZLIB(1)) as file:
            out = file.mktree(
                tree,
                _branch_types(),
                counter_name=lambda counted: "n" + counted,
                field_name=lambda _outer, inner: inner,
            )
            for start in range(0, n_events, chunk_size):
                stop = min(start + chunk_size, n_events)
                out.extend(_chunk(rng, start, stop, _PHYSICS[kind]))
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def make_signal_background(
    out_dir: str | os.PathLike[str],
    n_events: int,
    *,
    seed: int = 0,
    tree: str = "events",
) -> tuple[Path, Path]:
    """Write ``out_dir/signal.root`` and ``out_dir/background.root``.

    The signal uses ``seed`` and the background ``seed + 1``.
    """
    out_dir = Path(out_dir)
    signal = make_sample(
        out_dir / "signal.root", n_events, "signal", seed=seed, tree=tree
    )
    background = make_sample(
        out_dir / "background.root", n_events, "background", seed=seed + 1, tree=tree
    )
    return signal, background


def make_sample_set(
    out_dir: str | os.PathLike[str], n_events: int, *, seed: int = 0, tree: str = "events"
) -> tuple[Path, Path]:
    """Signal and background files plus ``files.txt`` and ``labels.txt`` (1, 0) listing them.

    Returns the paths of ``files.txt`` and ``labels.txt``.
    """
    signal, background = make_signal_background(out_dir, n_events, seed=seed, tree=tree)
    out = Path(out_dir)
    (out / "files.txt").write_text(f"{signal.resolve()}\n{background.resolve()}\n")
    (out / "labels.txt").write_text("1\n0\n")
    return out / "files.txt", out / "labels.txt"


def _branch_types() -> dict[str, object]:
    """Branch name -> type; each jagged group is a record named after its counter."""
    types: dict[str, object] = {"runNo": np.int32, "evtNo": np.int64, "lumi": np.int32}
    for name in FLAT_BRANCHES:
        types[name] = np.int32 if name in _INT_BRANCHES else np.float32
    for counter, fields in JAGGED_GROUPS.items():
        record = ak.types.RecordType(
            [ak.types.NumpyType("float32")] * len(fields), list(fields)
        )
        types[_record_name(counter)] = ak.types.ListType(record)
    return types


def _record_name(counter: str) -> str:
    """``nJets`` -> ``Jets``, so that uproot's counter ``"n" + record`` is ``nJets``."""
    return counter.removeprefix("n")


def _chunk(
    rng: np.random.Generator, start: int, stop: int, physics: _Physics
) -> dict[str, np.ndarray | ak.Array]:
    """Generate events ``[start, stop)``: identifiers, flat branches, jagged records."""
    n = stop - start
    evt_no = np.arange(start + 1, stop + 1, dtype=np.int64)
    flat: dict[str, np.ndarray] = {}
    records = {
        "nJets": _jets(rng, n, physics, flat),
        "nFatJets": _fat_jets(rng, n, flat),
        "nPartons": _partons(rng, n, physics),
        "nLeptons": _leptons(rng, n),
    }
    flat["nVtx"] = rng.poisson(20.0, n)
    flat["rho"] = np.maximum(0.6 * flat["nVtx"] + rng.normal(0.0, 2.0, n), 0.0)
    flat["triggerBit"] = rng.integers(1, 16, n)
    flat["genEvtWeight"] = np.where(rng.random(n) < 0.06, -1.0, 1.0)
    flat["MET"] = rng.rayleigh(25.0, n)
    flat["METphi"] = rng.uniform(-np.pi, np.pi, n)
    flat["METsig"] = flat["MET"] / np.sqrt(np.maximum(flat["HT"], 1.0))
    data: dict[str, np.ndarray | ak.Array] = {
        "runNo": np.full(n, _RUN_NUMBER, dtype=np.int32),
        "evtNo": evt_no,
        "lumi": (1 + (evt_no - 1) // _EVENTS_PER_LUMI).astype(np.int32),
    }
    for name in FLAT_BRANCHES:
        if name in JAGGED_GROUPS:
            continue  # counters are written by uproot from the records
        data[name] = flat[name].astype(
            np.int32 if name in _INT_BRANCHES else np.float32
        )
    for counter, record in records.items():
        data[_record_name(counter)] = record
    return data


def _records(fields: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """Turn per-object columns into a ``var * {field: float32}`` array."""
    columns = {
        name: np.asarray(values, dtype=np.float32) for name, values in fields.items()
    }
    return ak.unflatten(ak.zip(columns, depth_limit=1), counts)


def _eta(rng: np.random.Generator, width: float, size: int) -> np.ndarray:
    """Roughly normal with ``width`` near 0, squashed smoothly into (-2.5, 2.5)."""
    return 2.5 * np.tanh(rng.normal(0.0, width / 2.5, size))


def _phi(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.uniform(-np.pi, np.pi, size)


def _energy(pt: np.ndarray, eta: np.ndarray, mass: np.ndarray) -> np.ndarray:
    return np.hypot(pt * np.cosh(eta), mass)


def _sorted_desc(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Sort ``values`` in decreasing order within each event (``owner`` is sorted)."""
    return values[np.lexsort((-values, owner))]


def _nth(
    values: np.ndarray, starts: np.ndarray, counts: np.ndarray, k: int
) -> np.ndarray:
    """Return each event's ``k``-th object value, 0 where it has fewer objects."""
    out = np.zeros(len(counts), dtype=values.dtype)
    has = counts > k
    out[has] = values[starts[has] + k]
    return out


def _jets(
    rng: np.random.Generator, n: int, physics: _Physics, flat: dict[str, np.ndarray]
) -> ak.Array:
    """AK4 jets; fills the jet-derived event-level branches into ``flat``."""
    counts = np.minimum(rng.poisson(physics.jet_mean, n), _MAX_JETS)
    owner = np.repeat(np.arange(n), counts)
    size = owner.size
    pt = _sorted_desc(30.0 + rng.exponential(physics.jet_pt_slope, size), owner)
    eta = _eta(rng, 1.2, size)
    phi = _phi(rng, size)
    mass = pt * rng.uniform(0.05, 0.25, size)
    energy = _energy(pt, eta, mass)
    is_b = rng.random(size) < physics.b_fraction
    btag = np.where(is_b, rng.beta(6.0, 1.2, size), rng.beta(1.0, 6.0, size))
    fractions = rng.dirichlet([4.0, 3.0, 2.0, 0.3, 0.3], size)
    jets = {
        "jetPt": pt,
        "jetEta": eta,
        "jetPhi": phi,
        "jetMass": mass,
        "jetE": energy,
        "jetBtag": btag,
        "jetCvsL": rng.beta(2.0, 5.0, size),
        "jetQGL": rng.beta(2.0, 2.0, size),
        **{name: fractions[:, i] for i, name in enumerate(JAGGED_GROUPS["nJets"][8:])},
    }
    starts = np.cumsum(counts) - counts
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    ht = np.bincount(owner, weights=pt, minlength=n)
    sum_e = np.bincount(owner, weights=energy, minlength=n)
    phi0, phi1 = _nth(phi, starts, counts, 0), _nth(phi, starts, counts, 1)
    flat["nBJets"] = np.bincount(owner, weights=btag > _BTAG_WP, minlength=n)
    flat["HT"] = ht
    flat["MHT"] = np.hypot(
        np.bincount(owner, weights=px, minlength=n),
        np.bincount(owner, weights=py, minlength=n),
    )
    flat["leadJetPt"] = _nth(pt, starts, counts, 0)
    flat["leadJetEta"] = _nth(eta, starts, counts, 0)
    flat["dPhiJJ"] = np.where(
        counts >= 2, np.abs(np.angle(np.exp(1j * (phi0 - phi1)))), 0.0
    )
    flat["centrality"] = np.divide(ht, sum_e, out=np.zeros(n), where=sum_e > 0)
    flat["sphericity"], flat["aplanarity"] = _event_shapes(
        np.stack([px, py, pz], 1), owner, n
    )
    return _records(jets, counts)


def _event_shapes(
    p: np.ndarray, owner: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sphericity and aplanarity of the normalised momentum tensor, 0 for no jets."""
    tensor = np.zeros((n, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            tensor[:, a, b] = tensor[:, b, a] = np.bincount(
                owner, weights=p[:, a] * p[:, b], minlength=n
            )
    trace = np.trace(tensor, axis1=1, axis2=2)
    tensor /= np.where(trace > 0, trace, 1.0)[:, None, None]
    eigen = np.clip(np.linalg.eigvalsh(tensor), 0.0, None)  # ascending
    return 1.5 * (eigen[:, 0] + eigen[:, 1]), 1.5 * eigen[:, 0]


def _fat_jets(
    rng: np.random.Generator, n: int, flat: dict[str, np.ndarray]
) -> ak.Array:
    """AK8 jets (same for both kinds); fills the leading-fat-jet ``flat`` branches."""
    counts = np.minimum(rng.poisson(1.3, n), _MAX_FAT_JETS)
    owner = np.repeat(np.arange(n), counts)
    size = owner.size
    pt = _sorted_desc(200.0 + rng.exponential(120.0, size), owner)
    core = rng.choice([172.5, 80.4, 40.0], size, p=[0.35, 0.25, 0.40])
    mass = core * rng.lognormal(0.0, 0.12, size)
    tau1 = rng.beta(2.0, 4.0, size)
    tau2 = tau1 * rng.uniform(0.3, 1.0, size)
    z = rng.uniform(0.5, 0.95, size)
    starts = np.cumsum(counts) - counts
    flat["leadFatJetPt"] = _nth(pt, starts, counts, 0)
    flat["leadFatJetMass"] = _nth(mass, starts, counts, 0)
    return _records(
        {
            "fatJetPt": pt,
            "fatJetEta": _eta(rng, 1.0, size),
            "fatJetPhi": _phi(rng, size),
            "fatJetMass": mass,
            "fatJetMassSoftDrop": mass * rng.uniform(0.6, 1.0, size),
            "fatJetTau1": tau1,
            "fatJetTau2": tau2,
            "fatJetTau3": tau2 * rng.uniform(0.3, 1.0, size),
            "fatJetBtagSub0": rng.beta(1.0, 4.0, size),
            "fatJetBtagSub1": rng.beta(1.0, 4.0, size),
            "fatJetPtSub0": z * pt,
            "fatJetPtSub1": (1.0 - z) * pt,
            "fatJetDoubleB": 2.0 * rng.beta(2.0, 3.0, size) - 1.0,
        },
        counts,
    )


def _partons(rng: np.random.Generator, n: int, physics: _Physics) -> ak.Array:
    """Generator-level tops, Ws and bs (1..4 per event) sharing an event hardness."""
    counts = 1 + rng.binomial(3, 0.3, n)
    owner = np.repeat(np.arange(n), counts)
    size = owner.size
    hardness = 100.0 + rng.exponential(physics.parton_slope, n)
    pt = hardness[owner] * rng.lognormal(0.0, 0.2, size)
    eta = _eta(rng, 0.9, size)
    phi = _phi(rng, size)
    mass = rng.choice([172.5, 80.4, 4.8], size, p=[0.4, 0.2, 0.4])
    energy = _energy(pt, eta, mass)
    pz = pt * np.sinh(eta)
    return _records(
        {
            "partonPt": pt,
            "partonEta": eta,
            "partonPhi": phi,
            "partonE": energy,
            "partonMass": mass,
            "partonPx": pt * np.cos(phi),
            "partonPy": pt * np.sin(phi),
            "partonPz": pz,
            "partonRapidity": 0.5 * np.log((energy + pz) / (energy - pz)),
            "partonTheta": 2.0 * np.arctan(np.exp(-eta)),
            "partonMatchDR": rng.exponential(0.05, size),
            "partonMatchPtRatio": np.clip(rng.normal(1.0, 0.15, size), 0.05, None),
            "partonMatchBtag": rng.beta(2.0, 2.0, size),
        },
        counts,
    )


def _leptons(rng: np.random.Generator, n: int) -> ak.Array:
    """Soft leptons (0..3 per event, mostly none; same for both kinds)."""
    counts = rng.choice(4, n, p=[0.78, 0.16, 0.045, 0.015])
    size = int(counts.sum())
    pt = 10.0 + rng.exponential(25.0, size)
    eta = _eta(rng, 1.1, size)
    is_muon = rng.random(size) < 0.5
    iso = rng.exponential(0.08, size)
    return _records(
        {
            "leptonPt": pt,
            "leptonEta": eta,
            "leptonPhi": _phi(rng, size),
            "leptonE": _energy(pt, eta, np.where(is_muon, 0.10566, 0.000511)),
            "leptonCharge": np.where(rng.random(size) < 0.5, -1.0, 1.0),
            "leptonIsMuon": is_muon,
            "leptonIso": iso,
            "leptonMiniIso": iso * rng.uniform(0.5, 1.0, size),
            "leptonDxy": rng.normal(0.0, 0.005, size),
            "leptonDz": rng.normal(0.0, 0.01, size),
            "leptonSip3d": np.abs(rng.normal(0.0, 1.5, size)),
            "leptonIdMva": 2.0 * rng.beta(5.0, 2.0, size) - 1.0,
            "leptonJetDR": 0.4 + 4.0 * rng.beta(1.2, 5.0, size),
        },
        counts,
    )
