"""How the server's log writes what it refused."""

import logging


class WithoutTraceback(logging.Formatter):
    """A request refused as suspicious (django.security: too many fields, a bad Host, a redirect
    too long) is an answer in words, not a fault of the site: one line, without the traceback
    Django attaches to it."""

    def format(self, record):
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
