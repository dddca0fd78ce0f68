# The digits app, and the same image as a training or sweep worker (see README, "Docker").
#   docker build -t digits .
#   docker run -p 8501:8501 -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" digits
#   docker run -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" digits python -m core.train --trial fused
FROM python:3.11-slim-bookworm

# libsndfile1 and ffmpeg decode uploads; libportaudio2 is sounddevice's; espeak-ng and sox render training voices.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 ffmpeg libportaudio2 espeak-ng sox \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /app

# The CPU wheel of the pinned torch first (the default index would pull a CUDA build), then the other pins.
COPY requirements.txt ./
RUN TORCH=$(grep -E '^torch==' requirements.txt) \
    && pip install --index-url https://download.pytorch.org/whl/cpu "$TORCH" \
    && pip install -r requirements.txt

COPY . .
RUN pip install --no-deps -e . && useradd --create-home digits \
    && mkdir -p data runs && chown -R digits data runs
USER digits

# The app's idle OpenMP threads sleep (as scripts/app sets it); trainings it starts get OpenMP's default back.
ENV OMP_WAIT_POLICY=PASSIVE DIGITS_TRAINING_OMP_WAIT_POLICY="" DIGITS_DATA_DIR=/app/data
EXPOSE 8501
VOLUME ["/app/data", "/app/runs"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", \
     "--browser.gatherUsageStats=false"]
