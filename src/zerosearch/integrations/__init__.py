"""Adapters that plug zerosearch into other training frameworks (``verl``: install the extra ``verl``)."""
