package org.trialfhir.server;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.core.env.MapPropertySource;

/**
 * Starts a HAPI FHIR JPA server for R4 at http://127.0.0.1:PORT/fhir.
 *
 * <pre>
 *   java -cp ... org.trialfhir.server.TestFhirServer [--port 8080] [--db mem|file] [--data-dir DIR]
 * </pre>
 *
 * The database is an in-memory H2 by default; {@code --db file} keeps it in DATA-DIR.
 * It listens on the loopback interface only: this is a server for tests and the demo.
 */
public final class TestFhirServer {

  private TestFhirServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> options = parseOptions(args);
    int port = Integer.parseInt(options.getOrDefault("port", "8080"));
    String db = options.getOrDefault("db", "mem");
    String jdbcUrl;
    if (db.equals("mem")) {
      jdbcUrl = "jdbc:h2:mem:trialfhir;DB_CLOSE_DELAY=-1";
    } else if (db.equals("file")) {
      Path dir = Path.of(options.getOrDefault("data-dir", "run/h2")).toAbsolutePath();
      jdbcUrl = "jdbc:h2:file:" + dir.resolve("trialfhir");
    } else {
      throw new IllegalArgumentException("--db must be mem or file, not " + db);
    }

    AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext();
    spring.getEnvironment().getPropertySources().addFirst(
        new MapPropertySource("trialfhir", Map.of("trialfhir.jdbc-url", jdbcUrl)));
    spring.registerBean(FastJobMaintenance.class);
    spring.register(ServerConfig.class);
    spring.refresh();

    Server jetty = new Server();
    ServerConnector connector = new ServerConnector(jetty);
    connector.setHost("127.0.0.1");
    connector.setPort(port);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    // HAPI's paging provider serves at most 50 resources a page, whatever _count asks; a hospital may allow more.
    int maxPageSize = Integer.parseInt(options.getOrDefault("max-page-size", "0"));
    ServletHolder fhir = new ServletHolder(restfulServer(spring, maxPageSize));
    fhir.setInitOrder(1);
    context.addServlet(fhir, "/fhir/*");
    jetty.setHandler(context);

    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        jetty.stop();
      } catch (Exception ignored) {
        // shutting down anyway
      }
      spring.close();
    }));
    jetty.start();
    System.out.println("trialfhir test server: R4 at http://127.0.0.1:" + port + "/fhir (" + db + " database)");
    jetty.join();
  }

  /** The FHIR endpoint: every JPA resource provider, transactions, paging, bulk export. */
  private static RestfulServer restfulServer(AnnotationConfigApplicationContext spring, int maxPageSize) {
    FhirContext fhirContext = spring.getBean(FhirContext.class);
    RestfulServer server = new RestfulServer(fhirContext);
    server.setDefaultResponseEncoding(EncodingEnum.JSON);
    server.registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
    server.registerProvider(spring.getBean(JpaSystemProvider.class));
    server.registerProvider(spring.getBean(BulkDataExportProvider.class));
    DatabaseBackedPagingProvider paging = spring.getBean(DatabaseBackedPagingProvider.class);
    if (maxPageSize > 0) {
      paging.setMaximumPageSize(maxPageSize);
    }
    server.setPagingProvider(paging);
    @SuppressWarnings("unchecked")
    IFhirSystemDao<org.hl7.fhir.r4.model.Bundle, org.hl7.fhir.r4.model.Meta> systemDao =
        spring.getBean(IFhirSystemDao.class);
    JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
        server,
        systemDao,
        spring.getBean(JpaStorageSettings.class),
        spring.getBean(ISearchParamRegistry.class),
        spring.getBean(IValidationSupport.class));
    capabilities.setImplementationDescription("trialfhir test server (HAPI FHIR JPA, R4)");
    server.setServerConformanceProvider(capabilities);
    return server;
  }

  private static Map<String, String> parseOptions(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) {
        throw new IllegalArgumentException(
            "usage: TestFhirServer [--port N] [--db mem|file] [--data-dir DIR] [--max-page-size N]");
      }
      options.put(args[i].substring(2), args[++i]);
    }
    return options;
  }
}
