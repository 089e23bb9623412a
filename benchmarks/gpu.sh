#!/usr/bin/env bash
# One prepared run on a GPU machine without network access (Python 3.12, PyTorch, transformers,
# accelerate and PEFT installed; TRL, datasets, dill, multiprocess, ortools, immutabledict and a
# recent protobuf carried as wheels in .whl/). Within 10 minutes in all it
#   1. installs the wheels into /tmp/site and puts our package on PYTHONPATH from source,
#   2. prints versions, the GPU's name and the parameter counts of the two models used,
#   3. overhead: benchmarks/overhead.py, DMPOTrainer against TRL's GRPOTrainer on a 57M-parameter
#      Llama built from scratch (hidden 768, 6 layers), bf16, 64 completions × 128 tokens (forced),
#      group size 8, interleaved runs; prints the median step-time ratio,
#   4. quality: benchmarks/quality.py --mode-name gpu: a 34M-parameter Llama (hidden 512, 8 layers)
#      built from scratch and warm-started by SFT, then grpo and dmpo from it (1 seed, 40 steps ×
#      64 completions), both and the start evaluated on 48 held-out instances × 16 samples; prints
#      the table,
#   5. rollout: benchmarks/rollout_speed.py, generation tokens/s, step time and peak memory of
#      DMPOTrainer's generation backends (TRL's default generate, continuous batching, static cache
#      + torch.compile) on the 56.8M model (64 × 128, then 256 × 512 completions × tokens) and a
#      ~350M one (hidden 1024, 21 layers; 128 × 256, run second), bf16; no case starts after the box
#      less two minutes, and the JSON keeps every case that finished.
# GPU_SH_STAGES picks stages (comma-separated, default overhead,quality,rollout; the install and
# versions stages always run): GPU_SH_STAGES=rollout gives the rollout stage its whole box (480 s).
# The rollout stage needs transformers ≥ 5.8 (TRL's continuous batching; the H100 machine had 5.17); with an
# older one, carry transformers (5.24.0 is what the CPU tests use) and its tokenizers,
# huggingface-hub and safetensors as wheels too. A backend that fails is a row with its error.
# Every stage is time-boxed (a stage gets at most its cap and never more than what is left of
# GPU_SH_SECONDS, default 570) and prints its table as soon as it ends; a stage that fails or runs
# out of time does not stop the next. Output goes to $OUT when set (else runs/gpu-sh): gpu_sh.log
# (everything), overhead.txt, quality_gpu.md/.json and two PNGs, rollout_speed.txt/.json.
#
#   bash benchmarks/gpu.sh                   # on the GPU machine, from the repository root
#   GPU_SH_STAGES=rollout bash benchmarks/gpu.sh   # issue 15: only the rollout measurement (~8 min)
#   GPU_SH_DRY=1 bash benchmarks/gpu.sh      # the same stages at CPU size, with the current python3
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=${GPU_SH_DRY:-}
TOTAL=${GPU_SH_SECONDS:-570}
OUT_DIR=${OUT:-runs/gpu-sh}
mkdir -p "$OUT_DIR"
exec > >(tee -a "$OUT_DIR/gpu_sh.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export DMPO_CACHE=${DMPO_CACHE:-/tmp/dmpo-gpu-sh-cache}
WORK=${GPU_SH_WORK:-/tmp/dmpo-gpu-sh-work}
STAGES=${GPU_SH_STAGES:-overhead,quality,rollout}
PY=python3
want() { [[ ",$STAGES," == *",$1,"* ]]; }

# Seconds a stage may take: its cap, or what is left before the deadline less a reserve.
budget() { # cap reserve
  local left=$((TOTAL - SECONDS - $2))
  if ((left < $1)); then echo $((left > 10 ? left : 10)); else echo "$1"; fi
}
stage() { echo; echo "==== [$(date +%H:%M:%S), ${SECONDS}s] $*"; }
boxed() { # seconds command...: run with a time limit; say so when it was hit
  local limit=$1; shift
  timeout --kill-after=10 "$limit" "$@"
  local code=$?
  if ((code == 124 || code == 137)); then echo "!! stopped after its ${limit}s time box"; fi
  return $code
}

stage "install carried wheels"
if [[ -n $DRY ]]; then
  echo "GPU_SH_DRY=1: no install, using $(command -v $PY)"
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
else
  boxed "$(budget 120 420)" $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
fi

stage "versions and device"
boxed "$(budget 60 400)" $PY - <<'EOF'
import importlib, platform
import torch
from transformers import LlamaConfig, LlamaForCausalLM
print(f"python {platform.python_version()}  torch {torch.__version__}  cuda {torch.version.cuda}")
for name in ("transformers", "trl", "accelerate", "peft", "datasets", "ortools", "google.protobuf", "dmpo"):
    try:
        module = importlib.import_module(name)
        print(f"  {name:16} {getattr(module, '__version__', '?'):12} {module.__file__}")
    except Exception as exc:  # report and go on: the stages below say what breaks
        print(f"  {name:16} MISSING ({type(exc).__name__}: {exc})")
print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)")
with torch.device("meta"):  # parameter counts of the models built from scratch below
    for label, hidden, layers, heads in (("overhead model", 768, 6, 12), ("quality model", 512, 8, 8),
                                         ("rollout 350m model", 1024, 21, 16)):
        config = LlamaConfig(vocab_size=100, hidden_size=hidden, intermediate_size=4 * hidden,
                             num_hidden_layers=layers, num_attention_heads=heads, tie_word_embeddings=False)
        count = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
        print(f"{label}: hidden {hidden}, {layers} layers: {count / 1e6:.1f}M parameters")
EOF

if want overhead; then
stage "overhead: DMPOTrainer vs TRL GRPOTrainer"
if [[ -n $DRY ]]; then
  OVERHEAD=(--device cpu --hidden-size 64 --layers 2 --heads 4 --completions 16 --group-size 8 --length 16
            --warmup 1 --steps 1 --repeats 1)
else
  OVERHEAD=(--device cuda --bf16 --hidden-size 768 --layers 6 --heads 12 --completions 64 --group-size 8
            --length 128 --warmup 1 --steps 2 --repeats 3)
fi
# The trainers print a dict per logged step: keep the table alone on screen and in overhead.txt.
boxed "$(budget 200 240)" $PY benchmarks/overhead.py "${OVERHEAD[@]}" 2>&1 \
  | grep --line-buffered -v -e "^{'" -e "Loading weights" -e "Writing model" | tee "$OUT_DIR/overhead.txt"
fi

if want quality; then
stage "quality: SFT warm start, then grpo vs dmpo, evaluated"
MODE=gpu
[[ -n $DRY ]] && MODE=gpu-dry
QUALITY=(benchmarks/quality.py --mode-name "$MODE" --work-dir "$WORK" --output-dir "$OUT_DIR" --workers 2)
QUALITY_RESERVE=25
want rollout && QUALITY_RESERVE=200  # leave the rollout stage its smallest useful box
if ! boxed "$(budget 600 $QUALITY_RESERVE)" $PY "${QUALITY[@]}"; then
  echo "quality stage incomplete: the table below holds the runs that finished"
  boxed 25 $PY "${QUALITY[@]}" --report-only
fi
fi

if want rollout; then
stage "rollout: generation backends (default, continuous batching, static cache + compile)"
if [[ -n $DRY ]]; then
  ROLLOUT=(--dry-run)
else
  ROLLOUT=(--device cuda --bf16)
fi
BOX=$(budget 480 10)
# No case starts in the box's last two minutes (a 336M case with compilation takes about that).
boxed "$BOX" $PY benchmarks/rollout_speed.py "${ROLLOUT[@]}" --budget $((BOX > 240 ? BOX - 120 : BOX / 2)) \
    --json "$OUT_DIR/rollout_speed.json" 2>&1 \
  | grep --line-buffered -v -e "^{'" -e "Loading weights" -e "Writing model" -e "FutureWarning" -e "warnings.warn" \
  | tee "$OUT_DIR/rollout_speed.txt"
fi

stage "done in ${SECONDS}s; files in $OUT_DIR"
ls -la "$OUT_DIR"
