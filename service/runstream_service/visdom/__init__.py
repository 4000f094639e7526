"""Visdom's protocol, served by runstream: the unchanged visdom client draws into the DuckDB file.

protocol.py parses requests and builds replies (pure); panes.py is the window document and its update
rules (pure); storage.py writes through the single writer and reads on cursors; views.py shapes windows
for the web UI (M4 for long traces); routes.py is the aiohttp side, mounted on the Visdom port and
under /visdom on the HTTP port.
"""
