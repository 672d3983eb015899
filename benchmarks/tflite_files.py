r"""LiteRT latency of TFLite files side by side, in interleaved rounds.

Tiny models (a smoke winner runs in a tenth of a millisecond) move by 2x
between two timings a minute apart on a shared machine, so files compared
with each other are timed in turns: each round runs every file once through
``vsearch.deploy.latency.measure_latency`` (the search's own LiteRT runner
subprocess: XNNPACK, batch 1), and the table gives the median over rounds of
each round's median, and the fastest invoke seen.

  python benchmarks/tflite_files.py /tmp/win_export/model_float.tflite \
      /tmp/win_qat/model_int8.tflite /tmp/win_qat/model_qat_int8.tflite --threads=1
"""

import argparse
import statistics

from vsearch.deploy import latency as latency_lib


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("files", nargs="+")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--runs", type=int, default=200, help="timed invokes per file per round")
  parser.add_argument("--threads", type=int, default=1)
  args = parser.parse_args()
  settings = latency_lib.LatencySettings(threads=args.threads, runs=args.runs)
  medians = {path: [] for path in args.files}
  fastest = dict.fromkeys(args.files, float("inf"))
  host = None
  for _ in range(args.rounds):
    for path in args.files:
      measured = latency_lib.measure_latency(path, settings)
      medians[path].append(measured.median_ms)
      fastest[path] = min(fastest[path], measured.min_ms)
      host = measured.to_dict().get("host", host)
  print(f"{host}\n{args.rounds} rounds x {args.runs} invokes, {args.threads} thread(s), XNNPACK")
  print("| file | median of round medians ms | rounds' medians ms | fastest ms |")
  print("|---|---|---|---|")
  for path in args.files:
    rounds = ", ".join(f"{m:.3f}" for m in medians[path])
    print(f"| {path} | {statistics.median(medians[path]):.3f} | {rounds} | {fastest[path]:.3f} |")


if __name__ == "__main__":
  main()
