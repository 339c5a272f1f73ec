# cython: language_level=3
"""How the CPU kernels split their work (see _layout.pyx): the fixed block
sizes, the time-sized chunks of long kernels, the C int limit."""

cdef enum:
    # Row blocks of the row-parallel operations (transform, free energy,
    # gibbs).  Fixed: block sizes must never depend on the thread count.
    ROW_BLOCK = 64
    # dimensions the kernels take as C int
    INT_LIMIT = 2147483647

cdef Py_ssize_t unit_block(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil
cdef Py_ssize_t train_row_tile(Py_ssize_t batch_size) noexcept nogil
cdef Py_ssize_t train_unit_tile(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil
cdef Py_ssize_t train_grad_cols(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil
cdef Py_ssize_t first_chunk() noexcept
cdef Py_ssize_t next_chunk(Py_ssize_t chunk, double seconds)
