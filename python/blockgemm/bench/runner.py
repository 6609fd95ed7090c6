"""The benchmark's main loop (no torch in this process): cases in order, per case FlashInfer's layout probe,
every backend prepared and checked in parallel (one worker process per family), then the timings in
alternating rounds, one at a time; results written after every case so that a run cut short keeps what
it measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

from . import backends as bk
from . import probe as pr
from .protocol import CostModel, estimate_run, idle_before, protocols_for, schedule
from .records import new_record, write_json
from .rotation import case_bytes, case_rotation_sets
from .shapes import case_key, effective_m
from .supervisor import CRASH, TIMEOUT, Pool

PROBE_WORKER = "flashinfer:probe"


def log(message: str) -> None:
    print(message, flush=True)


def plan_cases(options: Dict) -> List[Tuple[str, Dict]]:
    from .shapes import suite_cases

    planned = []
    for suite in options["suites"]:
        m_list = options.get("m_list") if suite in ("deepseek", "other") else None
        for case in suite_cases(
            suite, m_list, options.get("shapes", ()), options.get("grouped_layouts", ("contiguous", "masked"))
        ):
            planned.append((suite, case))
    return planned


def backends_for(case: Dict, options: Dict) -> List[Dict]:
    if case["kind"] == "grouped":  # only the forms of the case's layout
        return [b for b in bk.grouped_backends(options["backends"]) if bk.supports(b, case)[0]]
    return bk.dense_backends(options["backends"], options["paths"], options["weight_scales"], options["input_scales"])


def wants_probe(case: Dict, options: Dict) -> bool:
    return (
        case["kind"] == "dense"
        and options["probe"]
        and "flashinfer" in options["backends"]
        and bk.supports(bk.make_backend("flashinfer", input_scale="auto"), case)[0]
    )


def estimate(planned: List[Tuple[str, Dict]], options: Dict):
    cases = []
    for _, case in planned:
        runnable = [b for b in backends_for(case, options) if bk.supports(b, case)[0]]
        cases.append({"m_effective": effective_m(case), "backends": len(runnable), "probe": wants_probe(case, options)})
    return estimate_run(
        cases,
        options["protocols"],
        options["rounds"],
        options["steady_s"],
        options["replays"],
        options["steady_min_m"],
        options["case_budget_s"],
        CostModel(),
        burst_idle_s=options.get("burst_idle_s", 0.0),
    )


def new_row(suite: str, case: Dict, backend: Dict) -> Dict:
    return {
        "suite": suite,
        "case": case,
        "key": case_key(case),
        "backend": backend["name"],
        "family": backend["family"],
        "spec": backend,
        "status": "skipped",
        "note": "",
        "check": None,
        "rotation_sets": None,
        "bytes_per_set": None,
        "prepare_s": None,
        "timings": [],
    }


class Runner:
    def __init__(self, options: Dict, argv: Optional[List[str]] = None):
        self.options = options
        self.record = new_record(options, argv)
        self.started = time.monotonic()
        self.pool: Optional[Pool] = None
        self.available: Dict[str, Tuple[bool, str]] = {}

    # ----------------------------------------------------------------------------- helpers
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def past_deadline(self) -> bool:
        return self.elapsed() > self.options["deadline_s"]

    def save(self) -> None:
        self.record["elapsed_s"] = self.elapsed()
        write_json(self.options["json_path"], self.record)

    def start_workers(self, families: List[str]) -> None:
        self.pool = Pool(families, start_timeout_s=self.options["start_timeout_s"])
        log(f"starting workers: {', '.join(families)}")
        hellos = self.pool.start_all()
        peers = {}
        for name, hello in hellos.items():
            family = name.split(":")[0]
            ok = hello.get("status") == "ok" and hello.get("available", False)
            reason = hello.get("reason") or hello.get("note") or ""
            if ":" not in name:
                self.available[family] = (ok, reason)
                self.record["families"][family] = hello
            log(f"  {name}: {'ready' if ok else 'UNAVAILABLE: ' + reason}")
            if ok and not self.record["device"] and hello.get("device"):
                self.record["device"] = dict(hello["device"], **{"nvml": hello.get("nvml", {})})
                versions = dict(hello.get("versions", {}))
                versions["driver"] = (hello.get("nvml") or {}).get("driver")
                self.record["versions"].update(versions)
            if ok and hello.get("module_version") and family != "blockgemm":
                peers[family] = hello["module_version"]
            if ok and family == "blockgemm":
                self.record["versions"]["blockgemm"] = hello.get("module_version")
                self.record["grouped_api"] = hello.get("grouped", {})
        self.record["versions"]["peers"] = peers
        manifest = os.environ.get("BLOCKGEMM_BENCH_PEERS_MANIFEST")
        if manifest and os.path.exists(manifest):
            with open(manifest) as handle:
                self.record["peers_manifest"] = json.load(handle)

    def unavailable_reason(self, backend: Dict) -> str:
        ok, reason = self.available.get(backend["family"], (False, "not started"))
        if not ok:
            return reason or f"{backend['family']} unavailable"
        if backend.get("form") in ("index", "offsets", "masked") and backend["family"] == "blockgemm":
            api = self.record.get("grouped_api", {})
            needed = "grouped_gemm_masked" if backend["form"] == "masked" else "grouped_gemm_contiguous"
            if not api.get(needed) or (backend["form"] == "index" and not api.get("contiguous_group_alignment")):
                return f"blockgemm.{needed} is not in this build (issue 25 not landed)"
        return ""

    # ----------------------------------------------------------------------------- one case
    def run_probe(self, case: Dict) -> Optional[str]:
        outcomes = {}
        for layout in pr.PROBE_ORDER:
            response = self.pool[PROBE_WORKER].request(
                {"op": "probe", "case": case, "layout": layout, "seed": self.options["seed"]},
                timeout_s=self.options["prepare_timeout_s"],
            )
            if response.get("status") == "ok":
                outcomes[layout] = response["outcome"]
            elif response.get("status") in (CRASH, TIMEOUT):
                outcomes[layout] = pr.outcome(pr.CRASH, note=response.get("note", ""))
            else:
                outcomes[layout] = pr.outcome(pr.ERROR, note=response.get("note", ""))
        chosen, summary = pr.decide_layout(outcomes)
        self.record["probes"].append(
            {
                "case": case,
                "key": case_key(case),
                "outcomes": outcomes,
                "chosen": chosen,
                "documented_layout_works": pr.documented_layout_works(outcomes),
                "summary": summary,
            }
        )
        log(f"  FlashInfer input-scale probe: {summary} -> {chosen or 'no correct layout'}")
        return chosen

    def prepare(
        self, case: Dict, rows: Dict[str, Dict], runnable: List[Dict], sets: int, layout: Optional[str]
    ) -> None:
        by_family: Dict[str, List[Dict]] = {}
        for backend in runnable:
            by_family.setdefault(backend["family"], []).append(backend)
        started = []
        for family, members in by_family.items():
            worker = self.pool[family]
            hello = worker.ensure()
            if hello is not None and not hello.get("available", False):
                for backend in members:
                    rows[backend["name"]].update(
                        status="crash", note="worker restart failed: " + str(hello.get("reason"))
                    )
                continue
            worker.send(
                {
                    "op": "prepare",
                    "case": case,
                    "backends": members,
                    "sets": sets,
                    "seed": self.options["seed"],
                    "target_graph_us": self.options["graph_us"],
                    "max_calls": self.options["max_calls"],
                    "options": {"flashinfer_input_scale": layout},
                }
            )
            started.append((family, members))
        for family, members in started:
            response = self.pool[family].receive(self.options["prepare_timeout_s"])
            for backend in members:
                row = rows[backend["name"]]
                if response.get("status") != "ok":
                    row.update(status=response.get("status", "error"), note=response.get("note", ""))
                    continue
                result = response["results"].get(backend["name"], {})
                row.update(
                    status=result.get("status", "error"), check=result.get("check"), prepare_s=result.get("prepare_s")
                )
                row["note"] = "; ".join(x for x in (row["note"], result.get("note", "")) if x)

    def time_case(self, case: Dict, rows: Dict[str, Dict], case_started: float) -> None:
        ready = [name for name, row in rows.items() if row["status"] == "ok"]
        protocols = protocols_for(effective_m(case), self.options["protocols"], self.options["steady_min_m"])
        lost_families = set()
        for protocol, round_index, position, name in schedule(ready, protocols, self.options["rounds"]):
            row = rows[name]
            timing = {"protocol": protocol, "round": round_index, "position": position}
            over_case = time.monotonic() - case_started > self.options["case_budget_s"]
            if row["family"] in lost_families or over_case or self.past_deadline():
                reason = (
                    "its worker crashed earlier in this case"
                    if row["family"] in lost_families
                    else "case budget spent" if over_case else "run deadline passed"
                )
                row["timings"].append(dict(timing, status="skipped", note=reason))
                continue
            warm_s = self.options["steady_s"] if protocol == "steady" else 0.0
            idle_s = idle_before(
                protocol, effective_m(case), self.options.get("burst_idle_s", 0.0), self.options["steady_min_m"]
            )
            if idle_s > 0:
                # Nothing else runs on the card meanwhile: every worker waits for this process's requests.
                time.sleep(idle_s)
            timing["idle_s"] = idle_s
            response = self.pool[row["family"]].request(
                {
                    "op": "time",
                    "backend": name,
                    "protocol": protocol,
                    "warm_s": warm_s,
                    "replays": self.options["replays"],
                },
                timeout_s=self.options["time_timeout_s"] + warm_s,
            )
            response.pop("id", None)
            row["timings"].append(dict(timing, **response))
            if response.get("status") in (CRASH, TIMEOUT):
                lost_families.add(row["family"])
                row["status"] = response["status"]
                row["note"] = "; ".join(x for x in (row["note"], "during timing: " + response.get("note", "")) if x)

    def run_case(self, suite: str, case: Dict) -> List[Dict]:
        key = case_key(case)
        rows = {b["name"]: new_row(suite, case, b) for b in backends_for(case, self.options)}
        if self.past_deadline():
            for row in rows.values():
                row["note"] = "run deadline passed"
            return list(rows.values())
        case_started = time.monotonic()
        sets = case_rotation_sets(case, self.options["rotation_bytes"])
        log(f"[{self.elapsed():6.1f} s] {suite} {key}: {sets} operand sets of {case_bytes(case) / 2**20:.1f} MiB")
        runnable = []
        for backend in backends_for(case, self.options):
            row = rows[backend["name"]]
            row.update(rotation_sets=sets, bytes_per_set=case_bytes(case))
            supported, why = bk.supports(backend, case)
            reason = "" if not supported else self.unavailable_reason(backend)
            if not supported:
                row.update(status="unsupported", note=why)
            elif reason:
                row.update(status="unavailable", note=reason)
            else:
                runnable.append(backend)
        layout = None
        if any(b["family"] == "flashinfer" and b["path"] == "fp8" for b in runnable) and wants_probe(
            case, self.options
        ):
            layout = self.run_probe(case)
            if layout is None:
                for backend in list(runnable):
                    if backend["family"] == "flashinfer" and backend["path"] == "fp8":
                        runnable.remove(backend)
                        rows[backend["name"]].update(
                            status="check_failed",
                            note="no input-scale layout gave a correct result: " + self.record["probes"][-1]["summary"],
                        )
        elif "flashinfer" in self.options["backends"] and case["kind"] == "dense":
            layout = pr.M_CONTIGUOUS
        self.prepare(case, rows, runnable, sets, layout)
        self.time_case(case, rows, case_started)
        self.log_case(rows)
        return list(rows.values())

    def log_case(self, rows: Dict[str, Dict]) -> None:
        from .summary import best_us

        parts = []
        for name, row in rows.items():
            if row["status"] != "ok":
                if row["status"] != "unsupported":
                    parts.append(f"{name} {row['status']}")
                continue
            burst, steady = best_us(row, "burst"), best_us(row, "steady")
            text = f"{name} {burst:.2f}" if burst else f"{name} -"
            if steady:
                text += f"/{steady:.2f}"
            parts.append(text)
        log("    us (burst[/steady]): " + ", ".join(parts))

    # ----------------------------------------------------------------------------- the run
    def run(self, planned: List[Tuple[str, Dict]]) -> Dict:
        families = []
        for _, case in planned:
            for backend in backends_for(case, self.options):
                if backend["family"] not in families and bk.supports(backend, case)[0]:
                    families.append(backend["family"])
        if any(wants_probe(case, self.options) for _, case in planned):
            families.append(PROBE_WORKER)
        try:
            self.start_workers(families)
            self.save()
            for suite, case in planned:
                self.record["rows"].extend(self.run_case(suite, case))
                self.save()
            self.record["complete"] = not self.past_deadline()
        finally:
            if self.pool is not None:
                self.pool.stop_all()
        self.record["elapsed_s"] = self.elapsed()
        return self.record


def finish(record: Dict, options: Dict) -> None:
    """Summaries into the record, the JSON, the markdown and the plots."""
    from . import report
    from .summary import record_summaries

    record["summaries"] = record_summaries(record["rows"], options["suites"])
    write_json(options["json_path"], record)
    text = report.render(record)
    with open(options["markdown_path"], "w") as handle:
        handle.write(text)
    log(text)
    log(f"wrote {options['json_path']} and {options['markdown_path']}")
    if options.get("plot", True):
        from .plot import plot_suites

        for path in plot_suites(record, options["plot_prefix"], options["peak_tflops"], options["hbm_tbps"]):
            log(f"wrote {path}")
    sys.stdout.flush()
