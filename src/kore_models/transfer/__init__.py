"""The transfer engines: chunk planning, the uploader, its journal, the poller, the downloader."""
