# The operator image: `docker build -t <registry>/rollout:<version> .`, then push it and set it with
# `images:` in your kustomization over deploy/base (README). git and ssh are needed at run time
# (GitSource sync and revert commits), and kubectl for GitSources that hold a kustomization.yaml
# (`kubectl kustomize`).
FROM python:3.11-slim

ARG KUBECTL_VERSION=v1.31.4
# Set by BuildKit for the platform being built (amd64, arm64); amd64 for the classic builder.
ARG TARGETARCH=amd64

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROLLOUT_CRDS_DIR=/opt/rollout/crds

RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates curl \
    && curl -fsSLo /usr/local/bin/kubectl \
        "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" \
    && echo "$(curl -fsSL "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256")  /usr/local/bin/kubectl" \
        | sha256sum -c - \
    && chmod 0755 /usr/local/bin/kubectl \
    && apt-get purge -y --auto-remove curl \
    && rm -rf /var/lib/apt/lists/*

# A named user for uid 65532: ssh refuses to run for a uid missing from /etc/passwd.
RUN groupadd --gid 65532 rollout \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin rollout

WORKDIR /src
COPY pyproject.toml README.md ./
COPY rollout ./rollout
COPY analysis ./analysis
RUN pip install --no-cache-dir . && rm -rf /src

# `rollout validate` checks manifests against the CRDs; the installed package does not carry them.
COPY crds /opt/rollout/crds

WORKDIR /
USER 65532:65532
ENTRYPOINT ["rollout"]
CMD ["run"]
