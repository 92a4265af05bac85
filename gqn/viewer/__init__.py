"""``gqn view``: a local web app to fly a camera around a scene the model has only glimpsed.

:mod:`gqn.viewer.session` holds the model logic (context views -> r, cameras -> renders),
:mod:`gqn.viewer.sources` opens a checkpoint with its scenes (a store split or a folder of
images + poses), :mod:`gqn.viewer.server` the HTTP API and the page (``static/``) on FastAPI +
uvicorn; docs/viewer.md describes them.
"""
