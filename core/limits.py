"""Every input limit in one place; core enforces them, the app shows them, the README's Limits section states them."""

MB = 1024 * 1024
MAX_UPLOAD_BYTES = 20 * MB  # any uploaded picture or recording; .streamlit/config.toml matches it
MIN_AUDIO_SECONDS = 0.05  # shorter cannot hold a spoken digit
MAX_AUDIO_SECONDS = 30.0  # checked before decoding, so a tiny compressed file cannot expand into hours
MAX_AUDIO_CHANNELS = 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
# rate x seconds x channels, judged before decoding: 30 s of 96 kHz stereo; 24 MB as float32. Within the
# limits above a recording could otherwise decode to 92 million samples (30 s, 384 kHz, 8 channels).
MAX_AUDIO_SAMPLES = 6_000_000
MAX_AUDIO_DECODE_S = 30  # M4A and WebM decode in ffmpeg; a file that keeps it busy longer is refused
MIN_IMAGE_SIDE = 8  # pixels; smaller cannot show a digit
MAX_IMAGE_PIXELS = 100_000_000  # width x height, checked from the header before decoding
# Width x height x bytes per pixel once decoded (Pillow keeps colour in 4 bytes a pixel; JPEGs decode at a
# reduced size first): an 8000x8000 grey or 4096x4096 colour PNG; a white 10000x10000 one would take 400 MB.
MAX_DECODED_IMAGE_BYTES = 64 * MB
# Training requests from the sidebar form (core.runs.store.TrainRequest.BOUNDS), inclusive.
TRAIN_BOUNDS = {
    "epochs": (1, 30),
    "batch_size": (8, 512),
    "lr": (1e-5, 1e-1),
    "dropout": (0.0, 0.8),
    "train_fraction": (0.01, 1.0),
    "seed": (0, 2**31 - 1),
}
# Files read back from runs/ and results/: larger ones are listed as unreadable instead of read into memory.
MAX_RECORD_BYTES = 8 * MB
# runs/ retention (the deployment setting can change both): the oldest ended runs are deleted first.
KEEP_RUNS = 50
KEEP_RUNS_MB = 2048
