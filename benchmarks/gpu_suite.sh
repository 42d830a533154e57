#!/usr/bin/env bash
# The GPU measurements in one call (issue 24): training speed, the largest batches, 1080p
# inference, the equal-quality pair and the CUDA-only tests. Every part has its own time limit
# and writes as it goes, so one that is stopped or fails leaves the others' figures.
#
#   bash benchmarks/gpu_suite.sh OUT            # on the GPU machine, from the repository root
#   bash benchmarks/gpu_suite.sh OUT --toy      # the same parts at toy sizes, to try it anywhere
#
# OUT gets summary.txt (the tables) and results.tar.gz (every JSON file and log).
set -u
out=${1:?usage: benchmarks/gpu_suite.sh OUT [--toy]}
toy=${2:-}
py=${PYTHON:-python3}
work=$(mktemp -d)
mkdir -p "$out" "$work/logs"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
summary=$out/summary.txt

if [ "$toy" = --toy ]; then  # seconds per part on a laptop CPU
    speed=(--size 32 --net-g resnet_6blocks --ngf 8 --ndf 8 --steps 2 --warmup 1 --rounds 2)
    b_main=1,2 b_more=4 video=(--video-size 64x48 --video-frames 4 --video-batch 2 --video-all-ways)
    maxb=(--max-batch-sizes 32) q_steps=8 q_every=4 q_data=(--n-train 8 --n-test 2)
    warm_limit=400 threads=1
else
    speed=(--steps 10 --warmup 3 --rounds 3)
    b_main=1,16 b_more=4 video=(--video-frames 64 --video-batch 4)
    maxb=() q_steps=1500 q_every=250 q_data=()
    warm_limit=170 threads=2
fi

part() {  # part NAME LIMIT_S COMMAND...: run with a time limit, log it, note how it ended
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $name (limit ${limit} s): $*"
    timeout -k 10 $limit "$@" >"$work/logs/$name.log" 2>&1
    rc=$?
    echo "$name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$work/logs/parts.txt"
    grep -v -e '^\s*$' "$work/logs/$name.log" | tail -n 30
}

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    "$py" -c 'import torch, triton, platform; print("torch", torch.__version__, "triton",
triton.__version__, "python", platform.python_version(), "cuda", torch.version.cuda)' 2>&1
    nproc
} | tee "$work/logs/env.txt"

# 1. untimed work side by side: torch.compile for every timed mode and batch (so the timed
#    runs below find Inductor's cache warm and compile in seconds), the equal-quality pair
#    (two seeds each) and the CUDA-only tests; few threads each, as eleven processes share
#    the machine's cores
export OMP_NUM_THREADS=$threads TORCHINDUCTOR_COMPILE_THREADS=4
for mode in default default/compile=reduce-overhead default/channels_last=off; do
    for b in ${b_main//,/ } $b_more; do
        [ "$mode" != default ] && [ "$b" != 1 ] && continue
        part "warm_${mode//[\/=]/_}_b$b" $warm_limit "$py" benchmarks/train_speed.py \
            --modes "$mode" --batches "$b" "${speed[@]}" --steps 1 --rounds 1 \
            --json "$work/warm_${mode//[\/=]/_}_b$b.json" &
    done
done
part warm_video $warm_limit "$py" benchmarks/train_speed.py --batches "" --video \
    "${video[@]}" "${speed[@]}" --json "$work/warm_video.json" &
for s in 0 1; do
    for how in default plain; do
        flag=$([ $how = plain ] && echo --plain)
        part "quality_${how}_s$s" $warm_limit "$py" benchmarks/quality.py --preset cpu \
            --steps $q_steps --eval-every $q_every --seed $s "${q_data[@]}" $flag \
            --out "$work/quality_${how}_s$s" &
    done
done
part cuda_tests $warm_limit "$py" -m pytest -q -p no:cacheprovider -m gpu -rs tests &
wait
unset OMP_NUM_THREADS TORCHINDUCTOR_COMPILE_THREADS

# 2. training speed, one process at a time: plain vs the default (compile auto) and eager bf16
#    with and without channels-last at batch 1 and 16, then 4; CUDA graphs and compiled NCHW
#    at batch 1
part speed 130 "$py" benchmarks/train_speed.py --modes plain,+bf16,+channels_last,default \
    --batches "$b_main" "${speed[@]}" --json "$work/speed.json"
part speed_b4 60 "$py" benchmarks/train_speed.py --modes plain,+channels_last,default \
    --batches "$b_more" "${speed[@]}" --json "$work/speed_b4.json"
part speed_variants 80 "$py" benchmarks/train_speed.py \
    --modes plain,default/compile=reduce-overhead,default/channels_last=off \
    --batches 1 "${speed[@]}" --json "$work/speed_variants.json"

# 3. 1080p inference, 4. the largest batches (alone: it fills the card)
part video 60 "$py" benchmarks/train_speed.py --batches "" --video "${video[@]}" \
    "${speed[@]}" --json "$work/video.json"
part max_batch 60 "$py" benchmarks/train_speed.py --batches "" --max-batch "${maxb[@]}" \
    "${speed[@]}" --json "$work/max_batch.json"

for q in "$work"/quality_*; do
    [ -f "$q/quality.json" ] && cp "$q/quality.json" "$work/$(basename "$q").json"
    [ -f "$q/quality_curve.png" ] && cp "$q/quality_curve.png" "$work/logs/$(basename "$q").png"
done
{
    cat "$work/logs/env.txt" "$work/logs/parts.txt"
    for f in speed speed_b4 speed_variants video max_batch; do
        grep -h -e '×' -e 'frames/s' -e 'largest batch' "$work/logs/$f.log" 2>/dev/null
    done
    grep -h -e 'held-out PSNR' -e 'steps in' "$work"/logs/quality_*.log
    grep -h -e 'passed' -e 'failed' -e 'SKIPPED' "$work/logs/cuda_tests.log"
} >"$summary"
tar -czf "$out/results.tar.gz" -C "$work" --exclude 'quality_*/*' .
cat "$summary"
