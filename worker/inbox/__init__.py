"""The approval inbox: a small web application where approvers sign in (a signed link or OpenID
Connect), see the approvals waiting for them across runs, decide them (signed updates through
`CadenzaClient`) and read their past decisions; with an HTTP API for services.

`worker.inbox.app.create_app` builds the ASGI app; `cadenza inbox` serves it with uvicorn.
Workers import only `worker.inbox.links` (sign-in links in reminders), not the web stack.
"""
