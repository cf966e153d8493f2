"""The benchmark result as a plain-text table (also pasted into BENCHMARKS.md)."""

from __future__ import annotations


def _rate(side: dict | None) -> str:
    return "-" if side is None else f"{side['samples_per_s']:,.0f}"


def _mib(side: dict | None) -> str:
    """Peak memory of a timed block, and in brackets its rise over the memory in use when it began."""
    if side is None or side.get("peak_memory_bytes") is None:
        return "-"
    peak, start = side["peak_memory_bytes"], side.get("memory_at_start_bytes")
    rise = "" if start is None else f" (+{max(peak - start, 0) / 2**20:,.0f})"
    return f"{peak / 2**20:,.0f}{rise}"


def render(result: dict) -> str:
    """Header (settings, machine, data, activity, equivalence), the model table and the data table."""
    s, m = result["settings"], result["machine"]
    act = ", ".join(f"{k} {v:.1%}" for k, v in result["activity"].items())
    eq = result["equivalence"]
    lines = [
        (f"device {m['device']}{' (' + m['gpu'] + ')' if 'gpu' in m else ''}, {m['cpu_count']} CPUs, "
         f"torch {m['torch']} with {m['torch_threads']} threads (OMP_WAIT_POLICY={m.get('omp_wait_policy')}); "
         f"load average before {', '.join(f'{x:.1f}' for x in m['load_average'] or [])}, after "
         f"{', '.join(f'{x:.1f}' for x in m.get('load_average_after') or [])}"),
        (f"model {s.get('model', 'rsnn')}: batch {s['batch_size']}, {s['nb_steps']} steps, {s['nb_inputs']} inputs, {s['batches']} batches per "
         f"repeat, median of {s['repeats']} repeats after {s['warmup']} warm-up; weight scale "
         f"{s['weight_scale_used']}"),
        f"data: {result['data_set']}",
        f"activity (nonzero fraction): {act}",
        (f"fast path vs reference on one batch: {eq['last_layer_spike_mismatches']} last-layer spike mismatches, "
         f"loss diff {eq['loss_abs_diff']:.1e}, max relative gradient diff {eq['grad_max_rel_diff']:.1e}"),
        (f"samples/s: median over the timed repeats, each side at the faster of {m.get('thread_counts_tried')} "
         "threads (column threads: reference/spikecl); peak memory: "
         f"{result['cases'][0]['spikecl']['memory_kind']}, (+ rise over the start of the timed block)"),
        "",
        (f"{'case':<20} {'reference/s':>12} {'spikecl/s':>12} {'speed-up':>9} {'target':>7} {'threads':>8}  "
         f"{'peak MiB ref':>14} {'peak MiB spikecl':>16}"),
    ]
    gpu = []
    for row in result["cases"]:
        speed = "-" if row["speedup"] is None else f"{row['speedup']:.1f}x"
        target = "-" if row["target_speedup"] is None else f">={row['target_speedup']:.0f}x"
        threads = "/".join("-" if side is None else str(side.get("threads") or "-")
                           for side in (row["reference"], row["spikecl"]))
        lines.append(f"{row['name']:<20} {_rate(row['reference']):>12} {_rate(row['spikecl']):>12} {speed:>9} "
                     f"{target:>7} {threads:>8}  {_mib(row['reference']):>14} {_mib(row['spikecl']):>16}")
        utilization = row["spikecl"].get("gpu_utilization_percent")
        if utilization is not None:
            gpu.append(f"{row['name']} {utilization:.0f}%")
    if gpu:
        lines.append("GPU utilisation during spikecl's timed repeats: " + ", ".join(gpu))
    d = result["data"]
    lines += [
        "",
        (f"data: {d['samples']:,} samples, {d['spikes']:,} spikes ({d['files_bytes'] / 2**20:,.0f} MiB of "
         f"SHD-format files) -> {d['events']:,} binned events"),
        f"  read + bin, cold (empty cache): {d['cold']['median_s']:.2f} s (target < {d['targets_s']['cold']:.0f} s)",
        f"  cached: {d['cached']['median_s']:.2f} s (target < {d['targets_s']['cached']:.0f} s)",
        (f"  in memory: {d['binned_nbytes'] / 2**20:,.0f} MiB binned vs {d['dense_float32_nbytes'] / 2**20:,.0f} "
         f"MiB dense float32 ({d['dense_over_binned']:.0f}x smaller)"),
    ]
    return "\n".join(lines)
