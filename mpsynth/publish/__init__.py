"""Publishing a finished run: a Hugging Face dataset folder, Croissant metadata, the upload."""
