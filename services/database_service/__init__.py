"""database-service (port 8008): the one owner of the five databases' pools and schemas.

Other services never see SQL: they call its typed HTTP API.
"""

PORT = 8008
