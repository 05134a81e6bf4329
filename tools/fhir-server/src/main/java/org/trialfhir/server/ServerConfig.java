package org.trialfhir.server;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.searchparam.submit.config.SearchParamSubmitterConfig;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.jpa.util.LoggingEmailSender;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.core.env.Environment;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The Spring configuration of the test server: HAPI's own JPA, R4, Batch2 (bulk export)
 * and subscription configurations, plus the beans HAPI expects the application to supply.
 */
@Configuration
@Import({
  JpaR4Config.class,
  HapiJpaConfig.class,
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  SubscriptionSubmitterConfig.class,
  SubscriptionProcessorConfig.class,
  SubscriptionChannelConfig.class,
  SearchParamSubmitterConfig.class,
  ThreadPoolFactoryConfig.class
})
public class ServerConfig {

  @Bean(destroyMethod = "close")
  public DataSource dataSource(Environment env) {
    BasicDataSource dataSource = new BasicDataSource();
    dataSource.setDriverClassName("org.h2.Driver");
    dataSource.setUrl(env.getRequiredProperty("trialfhir.jdbc-url"));
    dataSource.setUsername("sa");
    dataSource.setPassword("");
    dataSource.setMaxTotal(20);
    return dataSource;
  }

  @Bean
  public JpaStorageSettings storageSettings() {
    JpaStorageSettings settings = new JpaStorageSettings();
    // A read after a write must see it: tests and the adapter's reconciliation search
    // right after pushing, so cached search results (60 s by default) are switched off.
    settings.setReuseCachedSearchResultsForMillis(null);
    settings.setAllowMultipleDelete(true);
    settings.setAutoCreatePlaceholderReferenceTargets(false);
    settings.setEnableTaskBulkExportJobExecution(true);
    settings.setBulkExportFileRetentionPeriodHours(2);
    // Finish small exports within seconds instead of waiting for the next maintenance pass.
    settings.setJobFastTrackingEnabled(true);
    return settings;
  }

  @Bean
  public PartitionSettings partitionSettings() {
    return new PartitionSettings();
  }

  @Bean
  public SubscriptionSettings subscriptionSettings() {
    return new SubscriptionSettings();
  }

  @Primary
  @Bean
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      ConfigurableListableBeanFactory beanFactory,
      FhirContext fhirContext,
      JpaStorageSettings storageSettings,
      DataSource dataSource) {
    LocalContainerEntityManagerFactoryBean factory =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
    factory.setPersistenceUnitName("HAPI_PU");
    factory.setDataSource(dataSource);
    Properties jpa = new Properties();
    jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
    jpa.put("hibernate.hbm2ddl.auto", "update");
    jpa.put("hibernate.jdbc.batch_size", "20");
    jpa.put("hibernate.cache.use_query_cache", "false");
    jpa.put("hibernate.cache.use_second_level_cache", "false");
    jpa.put("hibernate.cache.use_structured_entries", "false");
    jpa.put("hibernate.cache.use_minimal_puts", "false");
    // No full-text indexing: the adapter needs no _content/_text searches.
    jpa.put("hibernate.search.enabled", "false");
    factory.setJpaProperties(jpa);
    return factory;
  }

  @Primary
  @Bean
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    return new JpaTransactionManager(entityManagerFactory);
  }

  @Bean
  public IEmailSender emailSender() {
    return new LoggingEmailSender();
  }

  /** Bulk export writes its NDJSON files as Binary content in the database. */
  @Bean
  public IBinaryStorageSvc binaryStorageSvc() {
    return new DatabaseBinaryContentStorageSvcImpl();
  }

  @Bean
  public BulkDataExportProvider bulkDataExportProvider() {
    return new BulkDataExportProvider();
  }
}
