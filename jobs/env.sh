# Sourced by the job scripts: Open MPI settings for this kind of machine.
# Root may run Open MPI only when it says so.
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores: oversubscribe, and let waiting ranks yield the core.
# --bind-to none: a rank uses threads on the cores it shares (lanes, or BLAS).
MPI_FLAGS=${MPI_FLAGS:-"--oversubscribe --bind-to none --mca mpi_yield_when_idle 1"}
