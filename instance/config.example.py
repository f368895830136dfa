"""Every setting of ppt_web with its default. Copy to instance/config.py and change what you need.

Precedence: these defaults, then instance/config.py, then PPT_* environment variables (named beside
each setting that has one), then the config given to create_app(). Paths default into the instance
folder, shown here as INSTANCE. A test fails when a setting is added to ppt_web/config.py and not here.

A few settings can also be changed while the service runs, on the settings page (/admin/settings); a value
saved there wins over this file: PPT_PAPER_STORAGE_PLACE, PPT_PAPER_KEEP_MONTHS, PPT_DOWNTIME_PAPER_KEEP_MONTHS,
PPT_ARCHIVE_ALERT_MINUTES, PPT_APPROVAL_WARN_DAYS, PPT_SIGNING_LOCATION (ppt_web/runtime_settings.py).
"""

# SQLALCHEMY_DATABASE_URI = 'sqlite:///INSTANCE/ppt.sqlite'  # env PPT_DATABASE_URL
# SQLALCHEMY_ENGINE_OPTIONS = {'hide_parameters': True}
# PPT_REDIS_URL = None  # env PPT_REDIS_URL
# PPT_SYNC_DIR = 'INSTANCE/sync'  # env PPT_SYNC_DIR
# PPT_ARCHIVE_BACKEND = 'local'  # env PPT_ARCHIVE_BACKEND
# PPT_ARCHIVE_HTTP_URL = None  # env PPT_ARCHIVE_HTTP_URL
# PPT_ARCHIVE_FOLDER = 'INSTANCE/archive-link'  # env PPT_ARCHIVE_FOLDER
# PPT_LOCAL_ARCHIVE_DIR = 'INSTANCE/archive'  # env PPT_LOCAL_ARCHIVE_DIR
# PPT_ARCHIVE_HTTP_TIMEOUT = 30  # env PPT_ARCHIVE_HTTP_TIMEOUT
# PPT_ARCHIVE_MAX_ATTEMPTS = 8  # env PPT_ARCHIVE_MAX_ATTEMPTS
# PPT_ARCHIVE_BACKOFF_SECONDS = 30  # env PPT_ARCHIVE_BACKOFF_SECONDS
# PPT_ARCHIVE_LEASE_SECONDS = 20  # env PPT_ARCHIVE_LEASE_SECONDS; the sender extends it every quarter while it works
# PPT_ARCHIVE_REPLY_HOURS = 24  # env PPT_ARCHIVE_REPLY_HOURS
# PPT_ARCHIVE_ALERT_MINUTES = 120  # env PPT_ARCHIVE_ALERT_MINUTES
# PPT_ARCHIVE_IMMEDIATE = True  # env PPT_ARCHIVE_IMMEDIATE=0 turns it off (to measure the sweep alone)
# PPT_SWEEP_SECONDS = 60  # env PPT_SWEEP_SECONDS
# PPT_ARCHIVE_SETTINGS = None
# PPT_STANDARDS_DIR = None
# PPT_INBOUND_BACKEND = 'folder'  # env PPT_INBOUND_BACKEND
# PPT_SVARINN_DIR = 'INSTANCE/svarinn'  # env PPT_SVARINN_DIR
# PPT_SVARINN_URL = None  # env PPT_SVARINN_URL
# PPT_SVARINN_USER = None  # env PPT_SVARINN_USER
# PPT_SVARINN_PASSWORD = None  # env PPT_SVARINN_PASSWORD
# PPT_SVARINN_KEY = None  # env PPT_SVARINN_KEY
# PPT_OUTBOUND_BACKEND = 'folder'  # env PPT_OUTBOUND_BACKEND
# PPT_SVARUT_URL = None  # env PPT_SVARUT_URL
# PPT_SVARUT_KONTO = None  # env PPT_SVARUT_KONTO
# PPT_SVARUT_INTEGRATION_ID = None  # env PPT_SVARUT_INTEGRATION_ID
# PPT_SVARUT_INTEGRATION_PASSWORD = None  # env PPT_SVARUT_INTEGRATION_PASSWORD
# PPT_INTAKE_SECONDS = 2  # env PPT_INTAKE_SECONDS
# PPT_INTAKE_THREADS = 2  # env PPT_INTAKE_THREADS
# PPT_INBOUND_SECONDS = 10  # env PPT_INBOUND_SECONDS
# PPT_SYNC_SETTLE_SECONDS = 2  # env PPT_SYNC_SETTLE_SECONDS
# PPT_SYNC_INCOMPLETE_SECONDS = 300  # env PPT_SYNC_INCOMPLETE_SECONDS
# PPT_PAPER_KEEP_MONTHS = 3  # env PPT_PAPER_KEEP_MONTHS
# PPT_DOWNTIME_PAPER_KEEP_MONTHS = 6  # env PPT_DOWNTIME_PAPER_KEEP_MONTHS
# PPT_PAPER_STORAGE_PLACE = 'Arkivrommet'  # env PPT_PAPER_STORAGE_PLACE
# PPT_SMTP_HOST = None  # env PPT_SMTP_HOST
# PPT_SMTP_PORT = 25  # env PPT_SMTP_PORT
# PPT_MAIL_FROM = 'ppt@localhost'  # env PPT_MAIL_FROM
# PPT_BASE_URL = 'http://localhost:5000'  # env PPT_BASE_URL
# PPT_APPROVAL_WARN_DAYS = 3  # env PPT_APPROVAL_WARN_DAYS
# PPT_SIGNING_P12 = None  # env PPT_SIGNING_P12
# PPT_SIGNING_PASSWORD = None  # env PPT_SIGNING_PASSWORD
# PPT_SIGNING_TRUST_ROOT = None  # env PPT_SIGNING_TRUST_ROOT
# PPT_SIGNING_LOCATION = ''  # env PPT_SIGNING_LOCATION
# The letterhead screen's values win over these:
# PPT_LETTERHEAD = {'name': 'PP-tenesta', 'address': '', 'org_number': '', 'phone': '', 'email': ''}
# PPT_DISPATCH_SECONDS = 30  # env PPT_DISPATCH_SECONDS
# PPT_DISPATCH_MAX_ATTEMPTS = 8  # env PPT_DISPATCH_MAX_ATTEMPTS
# PPT_DISPATCH_BACKOFF_SECONDS = 60  # env PPT_DISPATCH_BACKOFF_SECONDS
# PPT_DISPATCH_LEASE_SECONDS = 3600  # env PPT_DISPATCH_LEASE_SECONDS
# PPT_SVARUT_DIR = 'INSTANCE/svarut'  # env PPT_SVARUT_DIR
# PPT_SVARUT_TOKEN_PROVIDER = None  # env PPT_SVARUT_TOKEN_PROVIDER
# PPT_FIKSIO_API_URL = 'https://api.fiks.test.ks.no'  # env PPT_FIKSIO_API_URL; production: https://api.fiks.ks.no
# PPT_FIKSIO_AMQP_URL = 'amqps://io.fiks.test.ks.no:5671'  # env PPT_FIKSIO_AMQP_URL; production: amqps://io.fiks.ks.no:5671
# PPT_FIKSIO_ACCOUNT_ID = None  # env PPT_FIKSIO_ACCOUNT_ID; our Fiks IO account id (uuid)
# PPT_FIKSIO_ARCHIVE_ACCOUNT_ID = None  # env PPT_FIKSIO_ARCHIVE_ACCOUNT_ID; the archive's Fiks IO account id (uuid)
# PPT_FIKSIO_PRIVATE_KEY = None  # env PPT_FIKSIO_PRIVATE_KEY; path of our RSA key, unencrypted PKCS#8 PEM
# PPT_FIKSIO_CERTIFICATE = None  # env PPT_FIKSIO_CERTIFICATE; path of its certificate (PEM), uploaded to the account
# PPT_FIKSIO_INTEGRATION_ID = None  # env PPT_FIKSIO_INTEGRATION_ID; the Fiks integration's id (uuid)
# PPT_FIKSIO_INTEGRATION_PASSWORD = None  # env PPT_FIKSIO_INTEGRATION_PASSWORD
# PPT_FIKSIO_TOKEN_PROVIDER = None  # env PPT_FIKSIO_TOKEN_PROVIDER; "module:attribute"; unset: the SvarUt one
# PPT_METRICS_TOKEN = None  # env PPT_METRICS_TOKEN; /metrics: Bearer token, or unset: this host only
# PPT_LOG_FORMAT = 'text'  # env PPT_LOG_FORMAT
# PPT_LOG_LEVEL = 'INFO'  # env PPT_LOG_LEVEL
# PPT_TRUSTED_PROXIES = 0  # env PPT_TRUSTED_PROXIES
# PPT_SESSION_HOURS = 12
# PPT_LOGIN_MAX_FAILURES = 5  # env PPT_LOGIN_MAX_FAILURES
# PPT_LOGIN_LOCKOUT_SECONDS = 900  # env PPT_LOGIN_LOCKOUT_SECONDS
# PPT_LOGIN_CLIENT_MAX_FAILURES = 20  # env PPT_LOGIN_CLIENT_MAX_FAILURES  (per client address, same window)
# PPT_QUEUE_NAME = 'ppt'  # env PPT_QUEUE_NAME
# PPT_MAX_UPLOAD_BYTES = 52428800  # env PPT_MAX_UPLOAD_BYTES
# SESSION_COOKIE_HTTPONLY = True
# SESSION_COOKIE_SAMESITE = 'Lax'
# SESSION_COOKIE_NAME = 'ppt_session'
# REMEMBER_COOKIE_HTTPONLY = True
# WTF_CSRF_TIME_LIMIT = None
# WTF_CSRF_SSL_STRICT = True
# WTF_CSRF_FIELD_NAME = 'csrf_token'
# BABEL_DEFAULT_LOCALE = 'nn'
# BABEL_DEFAULT_TIMEZONE = 'Europe/Oslo'
# SECRET_KEY = None  # env PPT_SECRET_KEY; unset: generated once into instance/secret_key
