"""The master patient index: one person, one record across facilities (ADR 0023, docs/mpi.md).

Pure core (no storage): :mod:`~ketnoi.mpi.compare` turns two patients into a comparison vector,
:mod:`~ketnoi.mpi.model` weighs it (Fellegi–Sunter) and grades it, :mod:`~ketnoi.mpi.train` estimates the
weights from the data (EM), :mod:`~ketnoi.mpi.dedupe` finds the duplicate pairs of a set of patients.
The blocking keys and the patient view live in :mod:`ketnoi.search.extract_mpi`, because they are
written as index rows with every Patient.
"""
