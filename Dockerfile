# The coachlog image: the package and its console script on a slim Python.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY api ./api
COPY workers ./workers
COPY coachlog ./coachlog
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["coachlog"]
