"""Series in: files and built-ins to one clean array (``series``), a CSV's time column to a row order
(``timestamps``), the seasonal periods a series may have (``seasons``). numpy and the standard library only: the
host trains on them and a device's ``edgernn verify --data`` reads them."""
