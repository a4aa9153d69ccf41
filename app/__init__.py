"""The HTTP server (FastAPI): `uvicorn app.main:app`. See app/main.py and ../shared/API.md."""
