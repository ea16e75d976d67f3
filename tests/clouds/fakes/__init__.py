"""In-memory fake cloud REST servers (GCP, Azure) driven by the real SDK clients in tests.

Each is a ThreadingHTTPServer on 127.0.0.1 port 0 in a thread, with a request log and fault injection.
They check payloads the way the real APIs do (unknown fields, missing required ones, bad references),
so a wrong payload fails a test instead of passing silently.
"""
