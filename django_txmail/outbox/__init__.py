"""The outbox: a message's life from recording to its last status.

``store`` writes and reads ``Message`` rows, ``states`` is the one owner of
``Message.status``, ``claims`` decides who sends what, ``dispatch`` hands a
recorded message to whatever delivers it, and ``cancel``, ``resend`` and
``cleanup`` are what support does with messages afterwards.
"""
