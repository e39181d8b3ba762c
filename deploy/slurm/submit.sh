#!/bin/sh
# Submits the shards of sweep as a job array, then the merge job after them.
set -eu
array=$(sbatch --parsable reports/sweep-sweep/sweep.sbatch)
merge=$(sbatch --parsable --dependency=afterok:"${array%%;*}" reports/sweep-sweep/merge.sbatch)
echo "array job $array, merge job $merge"
