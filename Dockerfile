# The lab in a container: what deploy/kubernetes/matrix-job.yaml runs (as ice-lab:latest).
#   docker build -t ice-lab:latest .
#   docker run --rm --privileged ice-lab:latest run home-nat-both
# scripts/setup.sh installs everything, as on a bare Debian 12 machine, every agent included
# (aiortc, Chromium, kvs-js). The container must be privileged (namespaces, nftables, sysctls:
# see the manifest). Without sch_netem in the host's kernel, delays go through the lab's own
# delay line, as in CI. Where no registry is reachable, scripts/vm/base-image.sh makes
# debian:bookworm locally; scripts/vm/container-check.sh builds this file with podman and
# runs home-nat-both in it (docs/how-to/container.md: the commands and what they measured).
FROM debian:bookworm
WORKDIR /ice-lab
COPY . .
RUN scripts/setup.sh && rm -rf /var/lib/apt/lists/*
ENV PATH=/ice-lab/.venv/bin:$PATH
ENTRYPOINT ["lab"]
